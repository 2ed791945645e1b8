package disk

import (
	"fmt"
	"log/slog"
)

// pebbleLogger sends the engine's messages to the store's logger. The
// engine's Fatalf must not return; it panics instead of exiting, so that
// a failure in a commit becomes ErrBroken (commit recovers it) and not the
// end of a process that can still serve from memory.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal: " + msg)
	panic(msg)
}
