package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelletier/go-toml/v2"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/loadgen"
)

// workerStream points a --worker-url bench at the stream the worker
// consumes: the one that listens on the subjects the bench publishes to
// (--subject filled with every loadgen source), and its durable pull
// consumer there, c.Durable when that exists, else the stream's only one.
// A --config whose [consumer] stream names another stream is a usage
// error, as is a stream with no durable pull consumer or several (none of
// them c.Durable).
func (b *bench) workerStream(ctx context.Context, c *config.ConsumerConfig) error {
	var stream, first string
	for _, src := range loadgen.Sources() {
		subj := subjectFor(b.f.subject, src)
		name, err := b.js.StreamNameBySubject(ctx, subj)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: no JetStream stream listens on %s: give --subject the template the worker's stream listens on (now %q)", errUsage, subj, b.f.subject)
		}
		if err != nil {
			return fmt.Errorf("bench: stream of %s: %w", subj, err)
		}
		if stream != "" && name != stream {
			return fmt.Errorf("%w: --subject %q: %s goes to stream %s, %s to stream %s; the bench's events must all reach the worker's one stream", errUsage, b.f.subject, first, stream, subj, name)
		}
		if stream == "" {
			stream, first = name, subj
		}
	}
	if b.f.configPath != "" && configSets(b.f.configPath, "consumer", "stream") && c.Stream != stream {
		return fmt.Errorf("%w: the [consumer] stream of %s is %s, but the stream listening on %s (--subject %q) is %s: give the --subject and --config of the same worker",
			errUsage, b.f.configPath, c.Stream, first, b.f.subject, stream)
	}
	durable, err := b.workerDurable(ctx, stream, c.Durable)
	if err != nil {
		return err
	}
	c.Stream, c.Durable = stream, durable
	b.res.Stream, b.res.Consumer = stream, durable
	return nil
}

// workerDurable is want when stream has that consumer, else the stream's
// only durable pull consumer.
func (b *bench) workerDurable(ctx context.Context, stream, want string) (string, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("bench: stream %s: %w", stream, err)
	}
	if _, err := s.Consumer(ctx, want); err == nil {
		return want, nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "", fmt.Errorf("bench: consumer %s: %w", want, err)
	}
	var pull []string
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable != "" && ci.Config.DeliverSubject == "" {
			pull = append(pull, ci.Config.Durable)
		}
	}
	if err := l.Err(); err != nil {
		return "", fmt.Errorf("bench: consumers of %s: %w", stream, err)
	}
	switch len(pull) {
	case 1:
		return pull[0], nil
	case 0:
		return "", fmt.Errorf("%w: stream %s has no durable pull consumer: is the worker at --worker-url consuming it? (its consumer: [consumer] durable in --config)", errUsage, stream)
	}
	slices.Sort(pull)
	return "", fmt.Errorf("%w: stream %s has %d durable pull consumers (%s), none named %q: name the worker's with [consumer] durable in a --config file",
		errUsage, stream, len(pull), strings.Join(pull, ", "), want)
}

// configSets reports whether the TOML file at path sets key in table (the
// file was loaded already; one that cannot be read again sets nothing).
func configSets(path, table, key string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		return false
	}
	t, _ := doc[table].(map[string]any)
	_, ok := t[key]
	return ok
}
