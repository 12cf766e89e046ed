package ctl

import (
	"io"
	"testing"
)

// TestEveryCommandHasExamples: the README promises `--help` with examples
// for every command.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot(IO{In: nil, Out: io.Discard, Err: io.Discard})
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("incidentctl %s --help shows no example", c.Name())
		}
	}
}
