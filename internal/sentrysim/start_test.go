package sentrysim

import (
	"io"
	"net/http"
	"testing"
)

func TestStartServesOnLocalPort(t *testing.T) {
	t.Parallel()
	r, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	r.AddProject("web", "Web")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL()+"/api/0/organizations/acme/projects/", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("X-Sentry-Rate-Limit-Limit") != "40" {
		t.Errorf("status %d, limit %q: %s", resp.StatusCode, resp.Header.Get("X-Sentry-Rate-Limit-Limit"), body)
	}
}
