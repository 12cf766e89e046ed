package config

import (
	"strings"
	"testing"
)

func TestValidationErrorReport(t *testing.T) {
	cases := []struct {
		problems []string
		want     string
	}{
		{[]string{"state.backend: unknown backend"}, "x: invalid configuration (1 problem):\n  state.backend: unknown backend\n"},
		{[]string{"a: 1", "b: 2", "c: 3"}, "x: invalid configuration (3 problems):\n  a: 1\n  b: 2\n  c: 3\n"},
	}
	for _, c := range cases {
		var b strings.Builder
		(&ValidationError{Problems: c.problems}).Report(&b, "x: ")
		if b.String() != c.want {
			t.Errorf("Report(%q) =\n%q\nwant\n%q", c.problems, b.String(), c.want)
		}
	}
}
