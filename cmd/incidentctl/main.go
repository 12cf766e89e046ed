// Command incidentctl is the operator CLI of incidentd: publish events,
// query incidents, set up JetStream, migrate, export, import, verify and
// back up stores, and benchmark the pipeline end to end. See package ctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/llm-im/incidentd/ctl"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ctl.Run(ctx, os.Args[1:], ctl.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Env: os.LookupEnv})
}
