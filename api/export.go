package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// ExportPath streams every incident (see Handler.export).
const ExportPath = "/api/v1/export"

// ExportCountTrailer is the HTTP trailer of a complete export: how many
// incidents it holds. An export that failed half-way has no trailer and an
// aborted body.
const ExportCountTrailer = "Incidentd-Export-Count"

// ErrExportUnsupported is what Client.Scan returns from a worker that has
// no ExportPath (a build from before it).
var ErrExportUnsupported = errors.New("api: the worker does not serve " + ExportPath)

// ExportWriteStall is how long one write of an export may wait for the
// client to read: the export as a whole may take as long as the store is
// large, but a client that stops reading is cut off after this, releasing
// the store's snapshot (Pebble) and the connection, instead of holding
// them until it goes away. A variable for tests.
var ExportWriteStall = 30 * time.Second

// export answers GET ExportPath: every incident as JSON lines (each as
// incident.View), read with the store's Scan, so that incidents updated
// meanwhile are neither missed nor repeated. A complete answer ends with
// the ExportCountTrailer; when the store fails after the first bytes are
// out, the connection is aborted so the client cannot take the truncated
// body for a whole one.
func (h *Handler) export(w http.ResponseWriter, r *http.Request) {
	if err := noParameters(r.URL.RawQuery, ExportPath); err != nil {
		h.badRequest(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if r.Method == http.MethodHead {
		return
	}
	w.Header().Set("Trailer", ExportCountTrailer)
	cw := &countingWriter{w: w, rc: http.NewResponseController(w)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	enc := json.NewEncoder(bw)
	n := 0
	err := h.store.Scan(r.Context(), func(in *incident.Incident) error {
		n++
		return enc.Encode(incident.NewView(in))
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if cw.n == 0 && r.Context().Err() == nil {
			w.Header().Del("Trailer")
			h.fail(w, err)
			return
		}
		h.log.Warn("export aborted", zap.Int("incidents_sent", n), zap.Error(err))
		panic(http.ErrAbortHandler) // the client sees a broken body, not an end
	}
	w.Header().Set(ExportCountTrailer, strconv.Itoa(n))
}

// countingWriter counts the bytes that reached the response, and gives
// each write ExportWriteStall to reach the client (past the server's
// WriteTimeout, which bounds the other answers as a whole).
type countingWriter struct {
	w  io.Writer
	rc *http.ResponseController
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	_ = c.rc.SetWriteDeadline(time.Now().Add(ExportWriteStall)) // not supported by a test recorder
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Scan reads GET ExportPath and calls fn for each incident. It fails unless
// the body ends with the worker's count trailer and that many incidents
// came; a worker without the endpoint gives ErrExportUnsupported.
func (c *Client) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	resp, err := c.open(ctx, ExportPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return c.exportMissing(ctx)
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return fmt.Errorf("api export: %s: %s", resp.Status, decodeError(body).Error)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(resp.Body, 64<<10))
	n := 0
	for {
		var in incident.Incident
		err := dec.Decode(&in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("api export: after %d incidents: %w", n, err)
		}
		n++
		if err := fn(&in); err != nil {
			return err
		}
	}
	want := resp.Trailer.Get(ExportCountTrailer)
	if want != strconv.Itoa(n) {
		return fmt.Errorf("api export: incomplete: %d incidents received, the worker's count is %q", n, want)
	}
	return nil
}

// exportMissing tells a worker from before ExportPath (whose list answers:
// ErrExportUnsupported) from a URL that is no incidentd API at all (the
// list's error, wrapping ErrNotAPI).
func (c *Client) exportMissing(ctx context.Context) error {
	if _, err := c.Count(ctx, storage.Filter{}); err != nil {
		return err
	}
	return ErrExportUnsupported
}
