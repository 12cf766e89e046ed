package memory

import (
	"slices"
	"testing"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/storetest"
)

func TestNewestFirstPagesMatchFullSort(t *testing.T) {
	all := storetest.Population(200, 9)
	want := slices.Clone(all)
	slices.SortFunc(want, storage.CompareNewestFirst)
	for _, p := range []storage.Page{
		{}, {Limit: 1}, {Limit: 7}, {Offset: 7, Limit: 7}, {Offset: 40, Limit: 10},
		{Offset: 49, Limit: 1}, {Offset: 150, Limit: 100}, {Offset: 300, Limit: 5}, {Offset: -3, Limit: 5},
	} {
		got := newestFirst(slices.Clone(all), p)
		lo, hi := p.Window(len(got))
		wlo, whi := p.Window(len(want))
		storetest.RequireSame(t, "page", want[wlo:whi], got[lo:hi])
	}
}
