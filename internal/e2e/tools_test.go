package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// emulatorComponents are the Google Cloud CLI components that `gcloud beta
// emulators pubsub start` needs: the beta command track and the emulator.
// gcloud checks both before it starts the emulator; with prompts disabled it
// then fails instead of offering to install them.
var emulatorComponents = []string{"beta", "pubsub-emulator"}

// emulatorLauncher is the program gcloud runs for the emulator, relative to
// the SDK root: the emulator component installs it there.
var emulatorLauncher = filepath.Join("platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator")

// gcloudInfoTimeout bounds `gcloud info`, which takes about a second.
const gcloudInfoTimeout = time.Minute

// missingTools returns what the end-to-end test needs and cannot find, each
// with how it was looked for: go, gcloud and java on PATH, and gcloud's
// beta and pubsub-emulator components. A gcloud without the emulator is
// common (it is a separate component, or a separate Debian package), and
// without this check the test would fail half-way, after building, instead
// of being skipped. The components are the ones `gcloud info` lists, which
// reads the SDK's installation state and nothing online, as gcloud itself
// does before it starts the emulator; the emulator's launcher must also be
// under the SDK root it names. home holds the gcloud configuration.
func missingTools(ctx context.Context, home string) []string {
	var missing []string
	for _, tool := range []string{"go", "gcloud", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" on PATH")
		}
	}
	if _, err := exec.LookPath("gcloud"); err != nil {
		return missing
	}
	info, err := gcloudInfo(ctx, home)
	if err != nil {
		return append(missing, fmt.Sprintf("a gcloud that answers `gcloud info` (%v)", err))
	}
	for _, c := range emulatorComponents {
		if _, ok := info.Installation.Components[c]; !ok {
			missing = append(missing, fmt.Sprintf("gcloud's %s component (`gcloud info` does not list it among the components installed in %s)",
				c, info.Installation.SDKRoot))
		}
	}
	launcher := filepath.Join(info.Installation.SDKRoot, emulatorLauncher)
	if _, ok := info.Installation.Components["pubsub-emulator"]; ok {
		if st, err := os.Stat(launcher); err != nil || st.IsDir() {
			missing = append(missing, fmt.Sprintf("gcloud's pubsub-emulator component (listed as installed, but %s is missing)", launcher))
		}
	}
	return missing
}

// gcloudInfoOutput is what missingTools reads of `gcloud info`.
type gcloudInfoOutput struct {
	Installation struct {
		SDKRoot    string            `json:"sdk_root"`
		Components map[string]string `json:"components"`
	} `json:"installation"`
}

// gcloudInfo runs `gcloud info` with the environment the emulator gets.
func gcloudInfo(ctx context.Context, home string) (*gcloudInfoOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, gcloudInfoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gcloud", "info", "--format=json(installation.sdk_root,installation.components)")
	cmd.Env = gcloudEnv(home)
	cmd.Dir = home
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("failed to run gcloud info: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var info gcloudInfoOutput
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("failed to decode the output of gcloud info: %w", err)
	}
	if info.Installation.SDKRoot == "" {
		return nil, errors.New("gcloud info names no SDK root")
	}
	return &info, nil
}

// requireTools skips the test, saying what is missing (missingTools), when
// the machine cannot run it: on a workstation without the Google Cloud CLI
// or its emulator the rest of the suite still runs. CI sets E2E_REQUIRED=1
// (.ci/run), and then anything missing fails the test instead: the
// end-to-end run must never be skipped there unnoticed.
func requireTools(t *testing.T) {
	t.Helper()
	missing := missingTools(t.Context(), t.TempDir())
	if len(missing) == 0 {
		return
	}
	msg := "the end-to-end test needs " + strings.Join(missing, "; ") +
		" (the Pub/Sub emulator is `gcloud beta emulators pubsub start`, which runs on java): " +
		"install the Google Cloud CLI with its pubsub-emulator component (`gcloud components install pubsub-emulator`, " +
		"or the Debian package google-cloud-cli-pubsub-emulator) and a JRE"
	if os.Getenv("E2E_REQUIRED") != "" {
		t.Fatal(msg + " (E2E_REQUIRED is set)")
	}
	t.Skip(msg + "; skipping it")
}

// fakeTools makes a PATH directory with a go and (when java) a java that do
// nothing, and, when gcloud is set, a gcloud running the /bin/sh script it
// returns for the fake SDK root sdk (a directory that is not created).
func fakeTools(t *testing.T, java bool, gcloud func(sdk string) string) (bin, sdk string) {
	t.Helper()
	dir := t.TempDir()
	bin, sdk = filepath.Join(dir, "bin"), filepath.Join(dir, "sdk")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("go", "exit 0")
	if java {
		write("java", "exit 0")
	}
	if gcloud != nil {
		write("gcloud", gcloud(sdk))
	}
	return bin, sdk
}

// infoScript is a gcloud that answers `gcloud info` with sdk as its root and
// components as installed (and fails any other command, as a gcloud without
// the emulator fails `gcloud beta emulators pubsub start`).
func infoScript(sdk string, components ...string) string {
	comps := map[string]string{"core": "2025.06.20"}
	for _, c := range components {
		comps[c] = "1.0"
	}
	info := map[string]any{"installation": map[string]any{"sdk_root": sdk, "components": comps}}
	b, err := json.Marshal(info)
	if err != nil {
		panic(err)
	}
	return `if [ "$1" != info ]; then echo "ERROR: (gcloud) not in this fake" >&2; exit 1; fi
printf '%s\n' '` + string(b) + `'`
}

// installLauncher puts the emulator's launcher under sdk.
func installLauncher(t *testing.T, sdk string) {
	t.Helper()
	p := filepath.Join(sdk, emulatorLauncher)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestMissingTools: the check finds what the emulator needs, through a fake
// gcloud on PATH, and names it; with everything present it finds nothing.
func TestMissingTools(t *testing.T) {
	cases := []struct {
		name       string
		java       bool
		gcloud     func(sdk string) string // nil: no gcloud
		launcher   bool
		want       []string // substrings of the one message, in order
		wantNoneOf []string
	}{
		{name: "everything", java: true, launcher: true,
			gcloud: func(sdk string) string { return infoScript(sdk, "beta", "pubsub-emulator") }},
		{name: "no_emulator_component", java: true,
			gcloud: func(sdk string) string { return infoScript(sdk, "beta") },
			want:   []string{"gcloud's pubsub-emulator component (`gcloud info` does not list it"},
			// Not installed is not reported twice.
			wantNoneOf: []string{"listed as installed"}},
		{name: "no_beta_component", java: true, launcher: true,
			gcloud: func(sdk string) string { return infoScript(sdk, "pubsub-emulator") },
			want:   []string{"gcloud's beta component"}},
		{name: "component_without_launcher", java: true,
			gcloud: func(sdk string) string { return infoScript(sdk, "beta", "pubsub-emulator") },
			want:   []string{"listed as installed, but", "cloud-pubsub-emulator is missing"}},
		{name: "gcloud_info_fails", java: true,
			gcloud: func(string) string { return `echo "ERROR: (gcloud.info) broken installation" >&2; exit 1` },
			want:   []string{"a gcloud that answers `gcloud info`", "broken installation"}},
		{name: "no_gcloud_no_java",
			want: []string{"gcloud on PATH", "java on PATH"}, wantNoneOf: []string{"component"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin, sdk := fakeTools(t, tc.java, tc.gcloud)
			if tc.launcher {
				installLauncher(t, sdk)
			}
			// Only the fake tools are found (t.Setenv: not in parallel).
			t.Setenv("PATH", bin)
			got := strings.Join(missingTools(t.Context(), t.TempDir()), "; ")
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("missing %q, want nothing", got)
			}
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("missing %q, want it to name %q", got, w)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tc.wantNoneOf {
				if strings.Contains(got, w) {
					t.Errorf("missing %q names %q", got, w)
				}
			}
		})
	}
}

// TestRequireTools: with a gcloud that lacks the emulator component (a fake
// one) TestEndToEnd is skipped with a message naming the component, and
// fails with that message when E2E_REQUIRED is set. The test binary runs
// TestEndToEnd again, in a child process with only the fake tools on PATH.
func TestRequireTools(t *testing.T) {
	bin, _ := fakeTools(t, true, func(sdk string) string { return infoScript(sdk, "beta") })
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%t", required), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestEndToEnd$", "-test.v", "-test.count=1")
			cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir()}
			if required {
				cmd.Env = append(cmd.Env, "E2E_REQUIRED=1")
			}
			out, err := cmd.CombinedOutput()
			verdict, code := "--- SKIP: TestEndToEnd", 0
			if required {
				verdict, code = "--- FAIL: TestEndToEnd", 1
			}
			if got := cmd.ProcessState.ExitCode(); got != code || !bytes.Contains(out, []byte(verdict)) {
				t.Fatalf("exit %d (%v), want %d and %q:\n%s", got, err, code, verdict, out)
			}
			if want := "the end-to-end test needs gcloud's pubsub-emulator component"; !bytes.Contains(out, []byte(want)) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
			if required && !bytes.Contains(out, []byte("E2E_REQUIRED is set")) {
				t.Errorf("output does not say E2E_REQUIRED is set:\n%s", out)
			}
		})
	}
}
