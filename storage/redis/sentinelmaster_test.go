package redis_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestSentinelUnknownMaster: a redis+sentinel:// URL whose master name the
// (reachable) sentinels do not monitor fails saying so, with the names
// they do monitor, instead of "all sentinels ... are unreachable: redis:
// nil"; the password is not shown.
func TestSentinelUnknownMaster(t *testing.T) {
	sn := redistest.StartSentinel(t)
	url := "redis+sentinel://:d4ta-s3cret@" + strings.Join(sn.Addrs, ",") + "/nomaster/0"
	_, err := redis.New(redis.Config{URL: url, DialTimeout: time.Second}, nil, nil)
	if err == nil {
		t.Fatal("opened with an unknown master name")
	}
	t.Log(err)
	for _, want := range []string{`the sentinels answered but know no master named "nomaster"`, `they monitor "` + redistest.MasterName + `"`, "check the master name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "d4ta-s3cret") {
		t.Errorf("error says unreachable or shows the password: %v", err)
	}

	// One sentinel down, the others answering: said so.
	url = "redis+sentinel://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "," + sn.Addrs[0] + "/nomaster/0"
	_, err = redis.New(redis.Config{URL: url, DialTimeout: time.Second}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `the sentinels that answered (1 of 2; the others could not be asked) know no master named "nomaster"`) {
		t.Errorf("one sentinel down: %v", err)
	}
}
