package app

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/llm-im/incidentd/config"
)

// NewLogger builds the process logger from [log], writing to stderr (see
// NewLoggerTo).
func NewLogger(cfg config.LogConfig) (*zap.Logger, error) {
	return NewLoggerTo(cfg, os.Stderr)
}

// NewLoggerTo builds a logger from [log] writing to w: JSON lines in
// production, the console format when format is "console", or "auto" with w
// a terminal. Console levels are coloured only on a terminal, so a file or
// a pipe gets no escape codes.
func NewLoggerTo(cfg config.LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	tty := isTerminal(w)
	var enc zapcore.Encoder
	if cfg.Format == config.LogFormatConsole || (cfg.Format == config.LogFormatAuto && tty) {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		if tty {
			ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder // "1.5s", as the config writes them
		enc = zapcore.NewJSONEncoder(ec)
	}
	out := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(enc, out, zap.NewAtomicLevelAt(level))
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.DPanicLevel), zap.ErrorOutput(out)), nil
}

// isTerminal reports whether w is a terminal (not a file, a pipe or
// /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
