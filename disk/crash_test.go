package disk
const crashChildEnv = "COALESCE_CRASH_CHILD"
func crashChild() {}
