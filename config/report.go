package config

import (
	"fmt"
	"io"
)

// Report writes e as incidentd and incidentctl print an invalid
// configuration: "<prefix>invalid configuration (N problems):", then each
// problem on its own line, indented two spaces.
func (e *ValidationError) Report(w io.Writer, prefix string) {
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "%sinvalid configuration (%d %s):\n", prefix, len(e.Problems), noun)
	for _, p := range e.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
