package disk

import "os"

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "disk-example-") }
func osRemoveAll(dir string)       { os.RemoveAll(dir) }
