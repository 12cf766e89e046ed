// Package loadgen makes realistic synthetic incident events, as LLM gateways,
// evaluators and guardrails publish them, with a controlled share of
// duplicates. It feeds `incidentctl publish --generate`, `incidentctl bench`
// and the benchmarks of every pipeline stage, so they all measure the same
// load.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// Config shapes the generated stream.
type Config struct {
	// Seed makes the stream reproducible.
	Seed uint64
	// DuplicateRatio is the share of events that repeat an identity already
	// generated: half of them re-send an earlier event with its id (a
	// redelivery or producer retry), half are new events of an existing
	// identity. 0.3 by default.
	DuplicateRatio float64
	// AckRatio and ResolveRatio are the shares of acknowledge and resolve
	// events (aimed at identities already generated). 0 by default.
	AckRatio, ResolveRatio float64
	// Start is the first event time; each event is Step later than the
	// previous one. Defaults: 2026-01-01T00:00:00Z and 1ms.
	Start time.Time
	Step  time.Duration
	// IDPrefix prefixes event ids so several generators do not collide.
	IDPrefix string
}

// DefaultConfig is the load the performance targets are stated for.
func DefaultConfig() Config {
	return Config{Seed: 1, DuplicateRatio: 0.3, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Step: time.Millisecond, IDPrefix: "ev"}
}

// Generator yields events one by one. It is not safe for concurrent use.
type Generator struct {
	cfg    Config
	rng    *rand.Rand
	n      int
	events []origin   // every unique trigger generated, for duplicates
	local  rand.PCG   // reseeded for each event rebuilt (see origin)
	lrng   *rand.Rand // draws from local
}

// origin is what rebuilds one unique trigger: its own random seed, its
// number and its time. Keeping 24 bytes per identity instead of the event
// (about 700 bytes with its strings) bounds the memory of long runs: ten
// million generated events keep 170 MB instead of 5 GB.
type origin struct {
	seed uint64
	n    int64
	at   int64 // UnixNano
}

// New returns a generator; zero fields of cfg take DefaultConfig's values.
func New(cfg Config) *Generator {
	def := DefaultConfig()
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	if cfg.Step == 0 {
		cfg.Step = def.Step
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = def.IDPrefix
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	g.lrng = rand.New(&g.local)
	return g
}

// Sources returns the event sources the generator draws from, so a
// publisher knows every subject its events can go to.
func Sources() []string { return slices.Clone(sources) }

var (
	sources  = []string{"llm-gateway", "llm-evaluator", "guardrails", "cost-monitor", "rag-retriever", "embedding-service"}
	models   = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b", "mistral-large", "gemini-pro"}
	regions  = []string{"us-east-1", "us-west-2", "eu-west-1", "ap-south-1"}
	problems = []struct {
		title string
		typ   incident.Type
		unit  string
	}{
		{"High P95 latency on %s", incident.Performance, "ms"},
		{"Error rate above threshold for %s", incident.Availability, "percent"},
		{"Toxicity score spike from %s", incident.Security, "score"},
		{"Prompt injection detected against %s", incident.Security, ""},
		{"Token spend over budget for %s", incident.Compliance, "usd"},
		{"Hallucination rate regression in %s", incident.Data, "percent"},
		{"Rate limit exhaustion calling %s", incident.Infrastructure, "requests"},
		{"Upstream timeout from %s", incident.Application, "ms"},
	}
	words = strings.Fields("the gateway observed sustained degradation across replicas while the evaluator " +
		"flagged responses whose quality dropped below the agreed service level objective for this tenant " +
		"and the guardrail pipeline rejected a growing share of completions after the last deployment")
)

// Next returns the next event.
func (g *Generator) Next() incident.Event {
	g.n++
	at := g.cfg.Start.Add(time.Duration(g.n) * g.cfg.Step).UTC()
	r := g.rng.Float64()
	if len(g.events) > 0 {
		switch {
		case r < g.cfg.AckRatio:
			return g.control(incident.Acknowledge, at)
		case r < g.cfg.AckRatio+g.cfg.ResolveRatio:
			return g.control(incident.Resolve, at)
		case r < g.cfg.AckRatio+g.cfg.ResolveRatio+g.cfg.DuplicateRatio/2:
			return g.rebuild(g.events[g.rng.IntN(len(g.events))]) // same id: a redelivery
		case r < g.cfg.AckRatio+g.cfg.ResolveRatio+g.cfg.DuplicateRatio:
			ev := g.rebuild(g.events[g.rng.IntN(len(g.events))])
			ev.ID = g.id()
			ev.OccurredAt = at
			ev.Severity = incident.Severity(g.rng.IntN(5))
			v := g.rng.Float64() * 1000
			ev.Value = &v
			return ev
		}
	}
	o := origin{seed: g.rng.Uint64(), n: int64(g.n), at: at.UnixNano()}
	g.events = append(g.events, o)
	return g.rebuild(o)
}

// Identities returns how many distinct identities were generated so far.
func (g *Generator) Identities() int { return len(g.events) }

func (g *Generator) id() string { return g.idOf(int64(g.n)) }

func (g *Generator) idOf(n int64) string {
	return fmt.Sprintf("%s-%d-%d", g.cfg.IDPrefix, g.cfg.Seed, n)
}

func (g *Generator) control(a incident.Action, at time.Time) incident.Event {
	base := g.rebuild(g.events[g.rng.IntN(len(g.events))])
	return incident.Event{ID: g.id(), Action: a, DedupKey: base.DedupKey, Source: base.Source, Type: base.Type,
		Severity: base.Severity, Title: base.Title, Resources: base.Resources, Labels: base.Labels, OccurredAt: at}
}

// rebuild makes the unique trigger o describes, the same every time: every
// random choice comes from o's own seed.
func (g *Generator) rebuild(o origin) incident.Event {
	g.local.Seed(o.seed, o.seed^0x9e3779b97f4a7c15)
	rng := g.lrng
	at := time.Unix(0, o.at).UTC()
	p := problems[rng.IntN(len(problems))]
	model := models[rng.IntN(len(models))]
	region := regions[rng.IntN(len(regions))]
	src := sources[rng.IntN(len(sources))]
	tenant := fmt.Sprintf("tenant-%04d", o.n)
	v := rng.Float64() * 1000
	ev := incident.Event{
		ID:          g.idOf(o.n),
		Source:      src,
		Type:        p.typ,
		Severity:    incident.Severity(rng.IntN(5)),
		Title:       fmt.Sprintf(p.title, model) + " (" + tenant + ")",
		Description: sentence(rng, 8+rng.IntN(50)),
		Resources:   []string{"model/" + model, "region/" + region, "deployment/" + src + "-" + region},
		Labels:      map[string]string{"model": model, "region": region, "tenant": tenant, "env": "prod"},
		OccurredAt:  at,
		Value:       &v,
		Unit:        p.unit,
	}
	if rng.IntN(10) == 0 {
		ev.DedupKey = fmt.Sprintf("%s/%s/%s", src, tenant, model)
	}
	return ev
}

func sentence(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// Batches draws n batches of size events from g and fingerprints them with
// the default fields: what the store benchmarks feed to storage.Ingest.
func Batches(g *Generator, n, size int) [][]dedupe.Keyed {
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		panic(fmt.Sprintf("loadgen: default fingerprint fields: %v", err)) // the defaults are valid
	}
	out := make([][]dedupe.Keyed, n)
	for i := range out {
		out[i] = make([]dedupe.Keyed, size)
		for j := range out[i] {
			ev := g.Next()
			out[i][j] = dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)}
		}
	}
	return out
}
