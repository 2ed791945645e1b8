// Package disk is a durable Tier for coalesce: results kept on disk behind
// a Group's memory cache, so that a restart or a crash loses no computed
// result.
//
// A Store is a directory holding a Pebble database (an LSM tree: cheap
// small writes, range deletes for whole namespaces and versions, an open
// that reads no records) and the 32-byte secret that keys the Group's
// hashes, so that keys mean the same in the next process:
//
//	st, err := disk.Open(disk.Options{Dir: dir})
//	...
//	defer st.Close()
//	g, err := coalesce.New(fn, coalesce.Options{
//		Tiers: []coalesce.Tier{st}, Secret: st.Secret(), Version: "v1"})
//
// The one thing to know: with the default SyncGroupCommit a Save returns
// before its record is on disk, and a crash loses the results of the last
// CommitInterval (2 ms); SyncAlways makes Save wait for the fsync, so
// every result a Group has answered is durable.
package disk
