package sim

import (
	"fmt"
	"io"
)

// WriteHTML writes a self-contained HTML report; command is the command
// line that produced it.
func (r *Report) WriteHTML(w io.Writer, command string) error {
	_, err := fmt.Fprintf(w, "<!doctype html><title>coalesce sim</title><pre>%s</pre>", command)
	return err
}
