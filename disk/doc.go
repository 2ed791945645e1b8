// Package disk is a durable Tier for coalesce: results kept on disk behind
// a Group's memory cache, so that a restart or a crash loses no computed
// result.
package disk
