// Package cluster is a shared Tier for coalesce on Redis: each distinct
// input is computed once across machines.
package cluster
