package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheProgramAndManifests checks the image recipe
// without a container engine: what it builds exists, the version it stamps
// is the variable the binaries print, it runs as the user the manifests
// require, and the manifests use the image built locally when the node has
// it (imagePullPolicy: IfNotPresent).
func TestDockerfileMatchesTheProgramAndManifests(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, pkg := range regexp.MustCompile(`-o /out/\w+ (\./cmd/\w+)`).FindAllStringSubmatch(df, -1) {
		if _, err := os.Stat(filepath.Join("..", pkg[1], "main.go")); err != nil {
			t.Errorf("Dockerfile builds %s: %v", pkg[1], err)
		}
	}
	if !strings.Contains(df, "./cmd/incidentd") || !strings.Contains(df, "./cmd/incidentctl") {
		t.Error("Dockerfile does not build both binaries")
	}
	app, err := os.ReadFile("../app/app.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(df, "-X github.com/llm-im/incidentd/app.Version=") || !strings.Contains(string(app), "var Version = ") {
		t.Error("Dockerfile stamps a version variable the program does not have")
	}
	if !strings.Contains(df, `ENTRYPOINT ["/usr/local/bin/incidentd"]`) {
		t.Error("the entrypoint is not incidentd: the manifests pass only its flags")
	}
	user := regexp.MustCompile(`(?m)^USER (\d+):`).FindStringSubmatch(df)
	if user == nil {
		t.Fatal("Dockerfile sets no numeric USER")
	}
	files, _ := filepath.Glob("kubernetes/*/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests under kubernetes/*/")
	}
	for _, f := range files {
		m, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, uid := range regexp.MustCompile(`runAsUser: (\d+)`).FindAllStringSubmatch(string(m), -1) {
			if uid[1] != user[1] {
				t.Errorf("%s runs as %s, the image as %s", f, uid[1], user[1])
			}
		}
		for _, img := range regexp.MustCompile(`image: (\S+)`).FindAllStringSubmatch(string(m), -1) {
			if img[1] != "incidentd:latest" {
				t.Errorf("%s uses image %s; the README builds incidentd:latest", f, img[1])
			}
		}
		// With :latest and no policy Kubernetes always pulls, and the
		// image loaded into a kind or minikube node is never used.
		images := len(regexp.MustCompile(`(?m)^\s*image: `).FindAllIndex(m, -1))
		if n := len(regexp.MustCompile(`(?m)^\s*imagePullPolicy: IfNotPresent$`).FindAllIndex(m, -1)); n != images {
			t.Errorf("%s: %d images, %d with imagePullPolicy: IfNotPresent", f, images, n)
		}
	}
}
