package ctl

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress redraws one status line on a terminal every 250ms, or prints a
// plain line every 5s otherwise. line returns the text to show.
type progress struct {
	w     io.Writer
	tty   bool
	line  func(elapsed time.Duration) string
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(w io.Writer, line func(elapsed time.Duration) string) *progress {
	p := &progress{w: w, tty: terminal(w), line: line, start: time.Now(), stop: make(chan struct{})}
	every := 5 * time.Second
	if p.tty {
		every = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

func (p *progress) print() {
	s := p.line(time.Since(p.start))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
	} else {
		fmt.Fprintln(p.w, s)
	}
}

// done stops the ticker and leaves the final line.
func (p *progress) done() {
	close(p.stop)
	p.wg.Wait()
	p.print()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// clear stops the ticker and erases the status line from a terminal (a
// plain output keeps its lines), for a command that prints its own summary
// once done.
func (p *progress) clear() {
	close(p.stop)
	p.wg.Wait()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// rate formats n per elapsed as "12.3k/s".
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	r := float64(n) / d.Seconds()
	if r >= 1000 {
		return fmt.Sprintf("%.1fk/s", r/1000)
	}
	return fmt.Sprintf("%.0f/s", r)
}
