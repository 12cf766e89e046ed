package ctl_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// TestPublishLineOverMaxPayload: a line larger than the server's
// max_payload stops the run with an error naming the line and both sizes,
// not only NATS's "maximum payload exceeded".
func TestPublishLineOverMaxPayload(t *testing.T) {
	url := natstest.Start(t, server.Options{}) // nats-server's default max_payload: 1 MiB
	env := map[string]string{"NATS_URL": url}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)

	big := `{"id":"big","source":"x","title":"` + strings.Repeat("a", 2<<20) + `"}`
	file := t.TempDir() + "/big.ndjson"
	writeFile(t, file, `{"id":"a1","source":"x","title":"t"}`+"\n\n"+big+"\n"+`{"id":"a2","source":"x","title":"t"}`+"\n")
	r := runCtl(t, env, "", "publish", "-f", file)
	mustCode(t, r, ctl.ExitError)
	want := "line 3: " + strconv.Itoa(len(big)) + " bytes, over the NATS server's max_payload of 1048576 bytes"
	if !strings.Contains(r.err, want) || !strings.Contains(r.err, "maximum payload exceeded") {
		t.Errorf("stderr does not name the line and sizes (want %q):\n%s", want, r.err)
	}
	if strings.Contains(r.err, "sent and not acked") {
		t.Errorf("the failed line is reported twice:\n%s", r.err)
	}
	if !strings.HasPrefix(r.out, "published 1 event:") {
		t.Errorf("summary %q: want the one line before the big one", r.out)
	}
}
