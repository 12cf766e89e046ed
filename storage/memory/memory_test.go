package memory_test

import (
	"testing"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) storage.Store {
			s := memory.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	})
}
