package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/legacy"
	"github.com/llm-im/incidentd/storage/redis"
)

// legacyConv converts the records of the old system (LLM Incident
// Manager) that an import or a migration meets, fingerprinting them with
// the target's [dedupe] fields; records of ours pass through.
type legacyConv struct {
	fp *dedupe.Fingerprinter
	n  int // records converted
}

// newLegacyConv fingerprints with the [dedupe] table of the target's
// config file (the defaults without one), as the worker does. The file is
// loaded as the target's store is (stateConfig): with the STATE_*
// variables and the --to-* flags over it, so a file that leaves the Redis
// URL to the environment or to a flag is valid here as there.
func newLegacyConv(to *storeFlags) (*legacyConv, error) {
	cfg, err := loadConfigOverride(to.config, to.lookup(), to.override)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	fp, err := dedupe.NewFingerprinter(cfg.Dedupe.Fields, cfg.Dedupe.SourceFields)
	if err != nil {
		return nil, fmt.Errorf("[dedupe] of %s: %w", to.config, err)
	}
	return &legacyConv{fp: fp}, nil
}

// decode is decodeRecord for a record of ours, and for one of the old
// format (legacy.Is) its conversion, its problems named by our fields.
func (l *legacyConv) decode(raw json.RawMessage) (*incident.Incident, []fieldProblem, string) {
	if l == nil || !legacy.Is(raw) {
		return decodeRecord(raw)
	}
	old, err := legacy.Decode(raw)
	if err != nil {
		return nil, nil, fmt.Sprintf("not an incident of the old system (%s): %v", legacy.Name, err)
	}
	in, probs := legacy.Convert(old, l.fp)
	l.n++
	fps := make([]fieldProblem, len(probs))
	for i, p := range probs {
		fps[i] = fieldProblem{p.Field, p.Msg}
	}
	return in, fps, ""
}

// summary is the line saying how many of total records were converted,
// "" when none was. It is printed once the target has them, so a run
// whose target is refused prints no success line.
func (l *legacyConv) summary(total int) string {
	if l.n == 0 {
		return ""
	}
	return fmt.Sprintf("converted %d of %d records from the old system's format (%s): fingerprints recomputed, timelines dropped", l.n, total, legacy.Name)
}

// hint explains, on a refused input holding old records, that their
// problems are those of the converted incidents.
func (l *legacyConv) hint(err error) error {
	var e *invalidInputError
	if l.n > 0 && errors.As(err, &e) && e.hint == "" {
		e.hint = fmt.Sprintf("%d records in the old system's format (%s) were converted before these checks; their problems are named by the fields of the converted incident (see the README, Migrating from %s)",
			l.n, legacy.Name, legacy.Name)
	}
	return err
}

// importRecords reads an import input (readImport), converting the old
// system's records with the [dedupe] of --to-config, with the line saying
// how many were.
func importRecords(to *storeFlags, r io.Reader) ([]*incident.Incident, string, error) {
	conv, err := newLegacyConv(to)
	if err != nil {
		return nil, "", err
	}
	all, err := readImport(r, conv)
	if err != nil {
		return nil, "", conv.hint(err)
	}
	return all, conv.summary(len(all)), nil
}

// migrateLegacy copies a Redis keyspace of the old system, which the
// store refused (src), into the target: every record listed in its
// incidents set, converted as import converts them and checked as
// migrate checks a source, before the target is opened.
func migrateLegacy(cmd *cobra.Command, o IO, log *zap.Logger, src *redis.LegacyKeyspaceError, to *storeFlags) error {
	if err := to.checkTarget(); err != nil {
		return err
	}
	conv, err := newLegacyConv(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Err, "the source %s holds the old system's records (%s): reading them to convert\n", src.Prefix, legacy.Name)
	var ids []string
	var raws []json.RawMessage
	missing, err := src.Read(cmd.Context(), func(id string, raw []byte) error {
		ids, raws = append(ids, id), append(raws, raw)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	if missing > 0 {
		fmt.Fprintf(o.Err, "warning: %d ids of %s:incidents have no record: skipped\n", missing, src.Prefix)
	}
	all, err := conv.check(ids, raws)
	if err != nil {
		return conv.hint(err)
	}
	return copyInto(cmd, o, log, to, all, conv.summary(len(all)))
}

// check decodes and checks the records of a migration source, named by
// id, as readImport checks an input.
func (l *legacyConv) check(ids []string, raws []json.RawMessage) ([]*incident.Incident, error) {
	c := newInputCheck(func(i int) string { return fmt.Sprintf("incident %q", clip(ids[i], 64)) })
	all := make([]*incident.Incident, len(raws))
	extra := map[int][]fieldProblem{}
	for i, raw := range raws {
		in, fps, msg := l.decode(raw)
		if msg != "" {
			c.add(i, msg)
		}
		all[i] = in
		if len(fps) > 0 {
			extra[i] = fps
		}
	}
	c.incidents(all, extra)
	if e := c.err("migrate", "source records", len(all)); e != nil {
		return nil, e
	}
	return slices.Clip(all), nil
}
