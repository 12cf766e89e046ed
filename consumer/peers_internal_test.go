package consumer

import (
	"testing"
	"time"
)

// TestPeers: a worker that goes silent counts as lost and opens the window
// for reading ahead; one that says goodbye does not; a worker does not
// count itself.
func TestPeers(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := newPeers("INCIDENTS", "incidentd", 30*time.Second)
	if p.subject != "incidentd.peers.INCIDENTS.incidentd" {
		t.Fatalf("subject %q", p.subject)
	}
	p.heard([]byte(p.id), t0)
	p.heard([]byte("a"), t0)
	p.heard([]byte("b"), t0)
	if n := p.sweep(t0.Add(peerLost / 2)); n != 0 || p.suspect(t0.Add(peerLost/2)) {
		t.Fatalf("sweep before peerLost: %d lost, suspect %v; want none", n, p.suspect(t0))
	}
	p.heard([]byte("a"), t0.Add(peerLost/2))
	p.heard([]byte("b"+peerBye), t0.Add(peerLost/2))
	if n := p.sweep(t0.Add(peerLost)); n != 0 {
		t.Fatalf("sweep at peerLost: %d lost, want 0 (a beat since, b said goodbye)", n)
	}
	at := t0.Add(2 * peerLost)
	if n := p.sweep(at); n != 1 {
		t.Fatalf("sweep: %d lost, want 1 (a went silent)", n)
	}
	if !p.suspect(at.Add(29*time.Second)) || p.suspect(at.Add(30*time.Second)) {
		t.Fatal("suspect: want true for the window after the loss, false after it")
	}
}

// TestStuckPeers: a worker that says it is stuck (its commits keep
// failing) is alive, counts once as stuck, and keeps the window for
// reading ahead open from its last stuck beat; once it beats plainly it is
// no longer stuck, and a second stuck spell counts again.
func TestStuckPeers(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := newPeers("INCIDENTS", "incidentd", 30*time.Second)
	p.heard([]byte("a"), t0)
	if p.suspect(t0) || p.takeStuck() != 0 {
		t.Fatal("a plain beat: want no suspicion")
	}
	for i := range 10 { // stuck for 10 s
		p.heard([]byte("a"+peerStuck), t0.Add(time.Duration(i)*time.Second))
		if n := p.sweep(t0.Add(time.Duration(i) * time.Second)); n != 0 {
			t.Fatalf("a stuck worker beats: swept %d as lost", n)
		}
	}
	if n := p.takeStuck(); n != 1 {
		t.Fatalf("stuck %d times, want 1 for one spell", n)
	}
	last := t0.Add(9 * time.Second)
	if !p.suspect(last.Add(29*time.Second)) || p.suspect(last.Add(30*time.Second)) {
		t.Fatal("suspect: want the window to run from the last stuck beat")
	}
	p.heard([]byte("a"), last.Add(time.Second))
	p.heard([]byte("a"+peerStuck), last.Add(2*time.Second))
	if n := p.takeStuck(); n != 1 {
		t.Fatalf("a second spell: stuck %d, want 1", n)
	}
	p.heard([]byte(p.id+peerStuck), last)
	if n := p.takeStuck(); n != 0 {
		t.Fatal("a worker counted itself stuck")
	}
}
