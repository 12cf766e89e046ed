package ctl

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/llm-im/incidentd/config"
)

// configError is a configuration incidentctl cannot use: a --config file
// that cannot be read, or one whose values are invalid. Like incidentd, it
// exits 2 (ExitUsage).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// loadConfig is config.Load for incidentctl: its errors are configErrors.
func loadConfig(path string, env func(string) (string, bool)) (config.Config, error) {
	return loadConfigOverride(path, env, nil)
}

// loadConfigOverride is config.LoadOverride for incidentctl: its errors are
// configErrors.
func loadConfigOverride(path string, env func(string) (string, bool), override config.Override) (config.Config, error) {
	cfg, err := config.LoadOverride(path, env, override)
	if err != nil {
		return cfg, &configError{err: err}
	}
	return cfg, nil
}

// reportConfig prints err when it is a configuration problem (a
// configError, or a *config.ValidationError from flags) and reports whether
// it was one. Validation problems are printed one per line, indented, as
// incidentd prints them, after the context err adds in front of them.
func reportConfig(w io.Writer, err error) bool {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		context, ok := strings.CutSuffix(err.Error(), ve.Error())
		if !ok {
			context = ""
		}
		ve.Report(w, "incidentctl: "+context)
		return true
	}
	var ce *configError
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "incidentctl: %v\n", err)
		return true
	}
	return false
}
