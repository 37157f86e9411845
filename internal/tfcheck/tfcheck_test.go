package tfcheck

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sethvargo/go-envconfig"
	"github.com/zclconf/go-cty/cty"

	"github.com/secops-collectors/sentry-gcs/internal/config"

	"github.com/secops-collectors/sentry-gcs/internal/coverage"
	"github.com/secops-collectors/sentry-gcs/internal/events"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

const (
	terraformDir = "../../terraform"
	schemaPath   = "testdata/terraform-google-schema.json"
	// supplementPath holds the few resource types the module uses that the
	// provider schema copy in testdata lacks (see its supplement_note).
	supplementPath = "testdata/terraform-google-schema-supplement.json"
)

func loadModule(t *testing.T) *Module {
	t.Helper()
	m, err := Load(terraformDir)
	if err != nil {
		t.Fatalf("Load(%s): %v", terraformDir, err)
	}
	return m
}

func mustResource(t *testing.T, m *Module, typ, name string) *Block {
	t.Helper()
	b := m.Resource(typ, name)
	if b == nil {
		t.Fatalf("resource %s.%s not found", typ, name)
	}
	return b
}

func mustAttr(t *testing.T, b *Block, path ...string) *hclsyntax.Attribute {
	t.Helper()
	a := Attr(b.Body, path...)
	if a == nil {
		t.Fatalf("%s: attribute %s not set", b.Address(), strings.Join(path, "."))
	}
	return a
}

func mustEval(t *testing.T, m *Module, a *hclsyntax.Attribute) cty.Value {
	t.Helper()
	v, err := m.Eval(a.Expr)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return v
}

func mustString(t *testing.T, m *Module, a *hclsyntax.Attribute) string {
	t.Helper()
	v := mustEval(t, m, a)
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		t.Fatalf("%s: %s is not a known string (%#v)", a.SrcRange, m.Text(a.Expr.Range()), v)
	}
	return v.AsString()
}

func mustSeconds(t *testing.T, m *Module, a *hclsyntax.Attribute) time.Duration {
	t.Helper()
	v := mustEval(t, m, a)
	if !v.IsKnown() || v.IsNull() {
		t.Fatalf("%s: %s is unknown", a.SrcRange, m.Text(a.Expr.Range()))
	}
	if v.Type() == cty.Number {
		f, _ := v.AsBigFloat().Float64()
		return time.Duration(f * float64(time.Second))
	}
	d, err := time.ParseDuration(v.AsString())
	if err != nil {
		t.Fatalf("%s: %q is not a duration: %v", a.SrcRange, v.AsString(), err)
	}
	return d
}

// serviceEnv returns the Cloud Run container's environment: name → the
// attribute or expression that sets it (static env blocks, and the keys of
// dynamic env blocks' for_each), plus whether it comes from a secret.
type envEntry struct {
	value    string // source text of the value expression ("" for secrets)
	secretOf string // source text of secret_key_ref.secret
}

func serviceEnv(t *testing.T, m *Module) map[string]envEntry {
	t.Helper()
	svc := mustResource(t, m, "google_cloud_run_v2_service", "main")
	templates := Blocks(svc.Body, "template")
	if len(templates) != 1 {
		t.Fatalf("cloud run service: want one template block, got %d", len(templates))
	}
	containers := Blocks(templates[0].Body, "containers")
	if len(containers) != 1 {
		t.Fatalf("cloud run service: want one container, got %d", len(containers))
	}
	c := containers[0].Body
	env := make(map[string]envEntry)
	for _, e := range Blocks(c, "env") {
		name := literalString(e.Body.Attributes["name"].Expr)
		if name == "" {
			t.Fatalf("%s: env block without a literal name", e.DefRange())
		}
		var entry envEntry
		if a, ok := e.Body.Attributes["value"]; ok {
			entry.value = m.Text(a.Expr.Range())
		}
		if a := Attr(e.Body, "value_source", "secret_key_ref", "secret"); a != nil {
			entry.secretOf = m.Text(a.Expr.Range())
		}
		env[name] = entry
	}
	for _, d := range DynamicBlocks(c, "env") {
		fe := mustEval(t, m, d.Body.Attributes["for_each"])
		if !fe.IsKnown() || !fe.CanIterateElements() {
			t.Fatalf("%s: dynamic env for_each is not a known map: %#v", d.DefRange(), fe)
		}
		entry := envEntry{value: "dynamic"}
		for _, content := range Blocks(d.Body, "content") {
			if a := Attr(content.Body, "value_source", "secret_key_ref", "secret"); a != nil {
				entry = envEntry{secretOf: m.Text(a.Expr.Range())}
			}
		}
		for k := range fe.AsValueMap() {
			if _, dup := env[k]; dup {
				t.Errorf("env %s is set twice", k)
			}
			env[k] = entry
		}
	}
	return env
}

// managedEnvExpr returns the source text of local.managed_env[name].
func managedEnvExpr(t *testing.T, m *Module, name string) string {
	t.Helper()
	a, ok := m.Locals["managed_env"]
	if !ok {
		t.Fatalf("local managed_env not found")
	}
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("local managed_env is not an object literal")
	}
	for _, item := range obj.Items {
		if literalString(item.KeyExpr) == name || m.Text(item.KeyExpr.Range()) == name {
			return m.Text(item.ValueExpr.Range())
		}
	}
	t.Fatalf("local managed_env has no %s", name)
	return ""
}

func TestSchema_everyBlockMatchesProvider(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	s := loadSchemaWithSupplement(t)
	if len(m.Resources) < 20 {
		t.Fatalf("only %d resource/data blocks found; is %s the right directory?", len(m.Resources), terraformDir)
	}
	for _, err := range s.Check(m) {
		t.Error(err)
	}
}

// loadSchemaWithSupplement loads the reference schema and adds the
// supplement's types.
func loadSchemaWithSupplement(t *testing.T) *Schema {
	t.Helper()
	s, err := LoadSchema(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := LoadSchema(supplementPath)
	if err != nil {
		t.Fatal(err)
	}
	for typ, b := range sup.Resources {
		if _, ok := s.Resources[typ]; !ok {
			s.Resources[typ] = b
		}
	}
	return s
}

// The supplement only adds types the reference lacks: once the reference
// schema has one, the reference's definition must be the one checked.
func TestSchema_supplementOnlyAddsTypes(t *testing.T) {
	t.Parallel()

	s, err := LoadSchema(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := LoadSchema(supplementPath)
	if err != nil {
		t.Fatal(err)
	}
	for typ := range sup.Resources {
		if _, ok := s.Resources[typ]; ok {
			t.Errorf("%s is in the reference schema now: delete it from %s", typ, supplementPath)
		}
	}
	for typ := range sup.DataSources {
		if _, ok := s.DataSources[typ]; ok {
			t.Errorf("data source %s is in the reference schema now: delete it from %s", typ, supplementPath)
		}
	}
}

func TestSchemaCheck_catchesMistakes(t *testing.T) {
	t.Parallel()

	s, err := LoadSchema(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		src     string
		wantErr string
	}{
		{name: "valid", src: `
resource "google_pubsub_topic" "t" {
  name  = "x"
  count = 1
  lifecycle {
    ignore_changes = [labels]
  }
}`},
		{name: "unknown_resource_type", src: `resource "google_pubsub_topik" "t" { name = "x" }`,
			wantErr: `unknown resource type "google_pubsub_topik"`},
		{name: "unknown_attribute", src: `resource "google_pubsub_topic" "t" {
  name = "x"
  ack_deadline_seconds = 600
}`, wantErr: `unknown attribute "ack_deadline_seconds"`},
		{name: "missing_required_attribute", src: `resource "google_pubsub_subscription" "s" { name = "x" }`,
			wantErr: `missing required attribute "topic"`},
		{name: "missing_required_nested_attribute", src: `resource "google_pubsub_subscription" "s" {
  name  = "x"
  topic = "t"
  push_config {
    oidc_token {
      audience = "a"
    }
  }
}`, wantErr: `missing required attribute "push_endpoint"`},
		{name: "too_many_blocks", src: `resource "google_pubsub_subscription" "s" {
  name  = "x"
  topic = "t"
  retry_policy {}
  retry_policy {}
}`, wantErr: `block "retry_policy" appears 2 times, at most 1 allowed`},
		{name: "missing_required_block", src: `resource "google_secret_manager_secret" "s" { secret_id = "x" }`,
			wantErr: `block "replication" appears 0 times, at least 1 required`},
		{name: "computed_attribute_set", src: `resource "google_service_account" "a" {
  account_id = "x"
  email      = "x@y"
}`, wantErr: `attribute "email" is read-only`},
		{name: "block_written_as_attribute", src: `resource "google_pubsub_subscription" "s" {
  name         = "x"
  topic        = "t"
  retry_policy = {}
}`, wantErr: `"retry_policy" is a block, not an attribute`},
		{name: "unknown_dynamic_block", src: `resource "google_pubsub_topic" "t" {
  name = "x"
  dynamic "nope" {
    for_each = []
    content {}
  }
}`, wantErr: `unknown block "nope" (dynamic)`},
		{name: "bad_attribute_in_dynamic_content", src: `resource "google_storage_bucket" "b" {
  name     = "x"
  location = "EU"
  dynamic "lifecycle_rule" {
    for_each = [1]
    content {
      action {
        type = "Delete"
      }
      condition {
        agee = 3
      }
    }
  }
}`, wantErr: `unknown attribute "agee"`},
		{name: "unknown_lifecycle_argument", src: `resource "google_pubsub_topic" "t" {
  name = "x"
  lifecycle {
    ignore = [labels]
  }
}`, wantErr: `unknown lifecycle argument "ignore"`},
		{name: "unknown_data_source", src: `data "google_projekt" "p" {}`,
			wantErr: `unknown data type "google_projekt"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse(map[string][]byte{"case.tf": []byte(tc.src)})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			errs := s.Check(m)
			if tc.wantErr == "" {
				for _, err := range errs {
					t.Errorf("unexpected: %v", err)
				}
				return
			}
			var all []string
			for _, err := range errs {
				all = append(all, err.Error())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.wantErr) {
				t.Errorf("errors %q do not contain %q", all, tc.wantErr)
			}
		})
	}
}

func TestVariablesAndOutputs_described(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	if len(m.Variables) == 0 || len(m.Outputs) == 0 {
		t.Fatalf("found %d variables and %d outputs", len(m.Variables), len(m.Outputs))
	}
	for name, v := range m.Variables {
		if strings.TrimSpace(v.Description) == "" {
			t.Errorf("variable %q has no description", name)
		}
		if v.Type == cty.NilType {
			t.Errorf("variable %q has no type", name)
		}
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(name) {
			t.Errorf("variable %q is not snake_case", name)
		}
	}
	for name, o := range m.Outputs {
		if strings.TrimSpace(o.Description) == "" {
			t.Errorf("output %q has no description", name)
		}
		if o.Value == nil {
			t.Errorf("output %q has no value", name)
		}
	}
}

func TestResources_snakeCaseLabelsAndNamesFromVarName(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	label := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, b := range m.Resources {
		if !label.MatchString(b.Name) {
			t.Errorf("%s: label is not snake_case", b.Address())
		}
		for _, attr := range []string{"name", "account_id", "secret_id", "repository_id"} {
			a, ok := b.Body.Attributes[attr]
			if !ok {
				continue
			}
			refs := References(a.Expr)
			for _, r := range refs {
				if l, ok := m.Locals[strings.TrimPrefix(r, "local.")]; ok && strings.HasPrefix(r, "local.") {
					refs = append(refs, References(l.Expr)...)
				}
			}
			literal := literalString(a.Expr) != ""
			if literal || (!slices.Contains(refs, "var.name") && !slices.ContainsFunc(refs, isResourceRef)) {
				t.Errorf("%s: %s = %s is not derived from var.name", b.Address(), attr, m.Text(a.Expr.Range()))
			}
		}
	}
}

func isResourceRef(s string) bool { return strings.HasPrefix(s, "google_") }

// Every variable the Cloud Run deployment must set (internal/config's
// cloudrun:"required" tag) is set on the container, nothing Cloud Run sets
// itself is, every name is a real configuration variable, and secrets come
// from Secret Manager.
func TestCloudRun_environmentMatchesConfig(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	env := serviceEnv(t, m)
	known := make(map[string]config.Variable)
	for _, v := range config.Variables() {
		known[v.Name] = v
	}
	for _, v := range config.Variables() {
		_, set := env[v.Name]
		switch {
		case (v.CloudRun == config.CloudRunRequired || v.Required) && !set:
			t.Errorf("%s is required on Cloud Run but not set on the container", v.Name)
		case v.CloudRun == config.CloudRunPlatform && set:
			t.Errorf("%s is set by Cloud Run itself and must not be set by Terraform", v.Name)
		}
		if v.Secret && set {
			e := env[v.Name]
			if e.secretOf == "" || e.value != "" {
				t.Errorf("%s is a secret: it must come from secret_key_ref, not a plain value", v.Name)
			}
			if want := secretOf[v.Name]; e.secretOf != want {
				t.Errorf("%s comes from %q, want the module's secret %q", v.Name, e.secretOf, want)
			}
		}
	}
	for name := range env {
		if _, ok := known[name]; !ok {
			t.Errorf("env %s is not a variable of internal/config (typo?)", name)
		}
	}
}

// secretOf is the Secret Manager secret each secret variable comes from.
var secretOf = map[string]string{
	"SENTRY_AUTH_TOKEN":  "google_secret_manager_secret.sentry_token.secret_id",
	"SENTRY_AUDIT_TOKEN": "google_secret_manager_secret.sentry_audit_token[0].secret_id",
}

// The audit-log token (org:write) has its own optional secret, created and
// readable by the runtime account only when streams includes audit, and
// reaches the container as a secret environment variable.
func TestCloudRun_auditTokenSecret(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	svc := mustResource(t, m, "google_cloud_run_v2_service", "main")
	c := Blocks(Blocks(svc.Body, "template")[0].Body, "containers")[0].Body
	var found bool
	for _, d := range DynamicBlocks(c, "env") {
		if Traversal(d.Body.Attributes["for_each"].Expr) != "local.audit_token_env" {
			continue
		}
		found = true
		a := Attr(Blocks(d.Body, "content")[0].Body, "value_source", "secret_key_ref", "secret")
		if a == nil || m.Text(a.Expr.Range()) != secretOf["SENTRY_AUDIT_TOKEN"] {
			t.Errorf("SENTRY_AUDIT_TOKEN must come from the audit secret")
		}
	}
	if !found {
		t.Fatal("no dynamic env block over local.audit_token_env")
	}
	for _, r := range []struct{ typ, name string }{
		{"google_secret_manager_secret", "sentry_audit_token"},
		{"google_secret_manager_secret_iam_member", "runtime_audit_token"},
	} {
		b := mustResource(t, m, r.typ, r.name)
		if !strings.Contains(m.Text(mustAttr(t, b, "count").Expr.Range()), "local.audit_enabled") {
			t.Errorf("%s must exist only when the audit stream is selected", b.Address())
		}
	}
	if env, _ := m.Local("audit_token_env"); !env.IsKnown() || env.LengthInt() != 0 {
		t.Errorf("with the default streams, no audit token is set: %#v", env)
	}
}

// The stream variables: the selection, and prefixes that overlap no other.
func TestStreams_variables(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	c := config.Variables()
	for tf, env := range map[string]string{"issues_prefix": "ISSUES_PREFIX", "audit_prefix": "AUDIT_PREFIX"} {
		if v := m.Variables[tf]; v == nil || !v.HasDefault || v.Default.AsString() != defaultOf(c, env) {
			t.Errorf("%s must default to internal/config's %s default %q", tf, env, defaultOf(c, env))
		}
	}
	list := func(s ...string) cty.Value {
		if len(s) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		vs := make([]cty.Value, len(s))
		for i, x := range s {
			vs[i] = cty.StringVal(x)
		}
		return cty.ListVal(vs)
	}
	cases := []struct {
		name  string
		value cty.Value
		ok    bool
	}{
		{"streams", list("events"), true},
		{"streams", list("events", "issues", "audit"), true},
		{"streams", list("events", "spans"), false},
		{"streams", list(), false},
		{"issues_prefix", cty.StringVal("sentry/issues/"), true},
		{"issues_prefix", cty.StringVal("sentry/events/issues/"), false},
		{"issues_prefix", cty.StringVal("sentry/state/issues/"), false},
		{"issues_prefix", cty.StringVal("sentry/audit/"), false},
		{"audit_prefix", cty.StringVal("audit/"), true},
		{"audit_prefix", cty.StringVal("sentry/"), false},
	}
	for _, tc := range cases {
		failed, err := m.CheckVariable(tc.name, tc.value, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(failed) == 0; got != tc.ok {
			t.Errorf("%s=%#v accepted=%v (%q), want %v", tc.name, tc.value, got, failed, tc.ok)
		}
	}
	feed := mustResource(t, m, "google_chronicle_feed", "stream")
	if fe := m.Text(mustAttr(t, feed, "for_each").Expr.Range()); !strings.Contains(fe, "var.secops_feed_enabled") || !strings.Contains(fe, "local.stream_prefixes") {
		t.Errorf("the stream feeds must be gated by var.secops_feed_enabled and the selected streams: %s", fe)
	}
	if uri := m.Text(mustAttr(t, feed, "details", "gcs_v2_settings", "bucket_uri").Expr.Range()); !strings.Contains(uri, "each.value") || strings.Contains(uri, "state_prefix") {
		t.Errorf("stream feed bucket_uri = %s, want the stream's prefix", uri)
	}
}

// The configuration Terraform gives the service must pass internal/config's
// own validation (resource-derived values replaced by plausible ones).
func TestCloudRun_environmentPassesConfigValidation(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	managed, ok := m.Local("managed_env")
	if !ok {
		t.Fatal("local managed_env not found")
	}
	placeholders := map[string]string{
		"GCS_BUCKET":            "my-project-sentry-gcs",
		"SENTRY_ORG":            "acme",
		"PUSH_AUDIENCE":         "https://sentry-gcs-123.europe-west1.run.app",
		"PUSH_SERVICE_ACCOUNTS": "sentry-gcs-push@my-project.iam.gserviceaccount.com",
		"PUBSUB_TOPIC":          "projects/my-project/topics/sentry-gcs-trigger",
	}
	env := map[string]string{"SENTRY_AUTH_TOKEN": "sntrys_x", "K_SERVICE": "sentry-gcs"}
	for k, v := range managed.AsValueMap() {
		if v.IsKnown() && !v.IsNull() {
			env[k] = v.AsString()
			continue
		}
		p, ok := placeholders[k]
		if !ok {
			t.Fatalf("%s depends on a resource and has no placeholder in this test", k)
		}
		env[k] = p
	}
	cfg, err := config.Load(t.Context(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatalf("config from Terraform defaults rejected: %v", err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Errorf("serve config from Terraform defaults rejected: %v", err)
	}
	if !cfg.UseGCS() {
		t.Errorf("Terraform's service does not write to GCS")
	}
}

func TestCloudRun_service(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	svc := mustResource(t, m, "google_cloud_run_v2_service", "main")

	if got := Traversal(mustAttr(t, svc, "template", "service_account").Expr); got != "google_service_account.runtime.email" {
		t.Errorf("template.service_account = %s, want the runtime account", got)
	}
	if got := Traversal(mustAttr(t, svc, "deletion_protection").Expr); got != "var.deletion_protection" {
		t.Errorf("deletion_protection = %s, want var.deletion_protection", got)
	}
	if got := Traversal(mustAttr(t, svc, "template", "containers", "image").Expr); got != "var.image" {
		t.Errorf("image = %s, want var.image", got)
	}
	if a := Attr(svc.Body, "invoker_iam_disabled"); a != nil {
		if v := mustEval(t, m, a); !v.IsKnown() || v.True() {
			t.Errorf("invoker_iam_disabled must be false (no unauthenticated access)")
		}
	}
	if a := mustAttr(t, svc, "template", "scaling", "max_instance_count"); Traversal(a.Expr) == "" {
		v := mustEval(t, m, a)
		if !v.IsKnown() {
			t.Errorf("max_instance_count is unknown")
		}
	}

	// Cloud Build owns the image: Terraform must ignore it.
	lc := Blocks(svc.Body, "lifecycle")
	if len(lc) != 1 || lc[0].Body.Attributes["ignore_changes"] == nil {
		t.Fatalf("cloud run service: lifecycle.ignore_changes missing")
	}
	ignored := m.Text(lc[0].Body.Attributes["ignore_changes"].Expr.Range())
	if !strings.Contains(ignored, "template[0].containers[0].image") {
		t.Errorf("ignore_changes = %s, want template[0].containers[0].image", ignored)
	}

	// Request timeout: at least the run budget plus a margin to commit and
	// answer, and no more than the ack deadline (Pub/Sub stops waiting there).
	timeout := mustSeconds(t, m, mustAttr(t, svc, "template", "timeout"))
	budget := runBudget(t, m)
	if timeout < budget+30*time.Second {
		t.Errorf("Cloud Run timeout %s leaves less than 30s beyond RUN_BUDGET %s", timeout, budget)
	}
	if timeout > config.AckDeadline {
		t.Errorf("Cloud Run timeout %s exceeds the ack deadline %s", timeout, config.AckDeadline)
	}

	// No public access anywhere.
	for _, typ := range []string{"google_cloud_run_v2_service_iam_member", "google_storage_bucket_iam_member",
		"google_pubsub_topic_iam_member", "google_secret_manager_secret_iam_member"} {
		for _, b := range m.ResourcesOfType(typ) {
			text := m.Text(b.Body.Attributes["member"].Expr.Range())
			if strings.Contains(text, "allUsers") || strings.Contains(text, "allAuthenticatedUsers") {
				t.Errorf("%s grants %s to the public", b.Address(), text)
			}
		}
	}
}

// runBudget evaluates RUN_BUDGET as Terraform sets it (variable default).
func runBudget(t *testing.T, m *Module) time.Duration {
	t.Helper()
	managed, _ := m.Local("managed_env")
	if !managed.IsKnown() || managed.IsNull() {
		t.Fatal("local managed_env is unknown")
	}
	rb := managed.GetAttr("RUN_BUDGET")
	if !rb.IsKnown() {
		t.Fatal("RUN_BUDGET is unknown")
	}
	d, err := time.ParseDuration(rb.AsString())
	if err != nil {
		t.Fatalf("RUN_BUDGET %q: %v", rb.AsString(), err)
	}
	return d
}

func TestPubSub_pushSubscription(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	sub := mustResource(t, m, "google_pubsub_subscription", "push")

	if got := Traversal(mustAttr(t, sub, "topic").Expr); got != "google_pubsub_topic.trigger.id" {
		t.Errorf("push subscription topic = %s, want the trigger topic", got)
	}
	endpoint := m.Text(mustAttr(t, sub, "push_config", "push_endpoint").Expr.Range())
	if !strings.Contains(endpoint, "google_cloud_run_v2_service.main.uri") {
		t.Errorf("push_endpoint = %s, want the service URL", endpoint)
	}

	// OIDC: the dedicated push account, and an audience that is exactly the
	// one the service verifies (PUSH_AUDIENCE) and Cloud Run accepts.
	if got := Traversal(mustAttr(t, sub, "push_config", "oidc_token", "service_account_email").Expr); got != "google_service_account.push.email" {
		t.Errorf("oidc_token.service_account_email = %s, want the push account", got)
	}
	audience := m.Text(mustAttr(t, sub, "push_config", "oidc_token", "audience").Expr.Range())
	if got := managedEnvExpr(t, m, "PUSH_AUDIENCE"); got != audience {
		t.Errorf("PUSH_AUDIENCE = %s but the push token's audience = %s", got, audience)
	}
	svc := mustResource(t, m, "google_cloud_run_v2_service", "main")
	if ca := Attr(svc.Body, "custom_audiences"); ca == nil || !strings.Contains(m.Text(ca.Expr.Range()), audience) {
		t.Errorf("the service's custom_audiences do not include %s", audience)
	}
	if got := managedEnvExpr(t, m, "PUSH_SERVICE_ACCOUNTS"); got != "google_service_account.push.email" {
		t.Errorf("PUSH_SERVICE_ACCOUNTS = %s, want the push account", got)
	}

	// Ack deadline: longer than the run budget, at most Pub/Sub's maximum,
	// for every run budget the variable accepts.
	ack := mustSeconds(t, m, mustAttr(t, sub, "ack_deadline_seconds"))
	if ack > config.AckDeadline {
		t.Errorf("ack deadline %s exceeds Pub/Sub's maximum", ack)
	}
	if budget := runBudget(t, m); ack <= budget {
		t.Errorf("ack deadline %s is not longer than RUN_BUDGET %s", ack, budget)
	}
	for _, tc := range []struct {
		seconds int64
		ok      bool
	}{{30, true}, {420, true}, {540, true}, {541, false}, {600, false}, {0, false}} {
		failed, err := m.CheckVariable("run_budget_seconds", cty.NumberIntVal(tc.seconds), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(failed) == 0; got != tc.ok {
			t.Errorf("run_budget_seconds=%d accepted=%v, want %v", tc.seconds, got, tc.ok)
		}
		if tc.ok && time.Duration(tc.seconds)*time.Second >= ack {
			t.Errorf("run_budget_seconds=%d is accepted but not below the ack deadline %s", tc.seconds, ack)
		}
	}

	if Attr(sub.Body, "retry_policy", "minimum_backoff") == nil {
		t.Errorf("push subscription has no retry_policy")
	}
	dlt := mustAttr(t, sub, "dead_letter_policy", "dead_letter_topic")
	if got := Traversal(dlt.Expr); got != "google_pubsub_topic.dead_letter.id" {
		t.Errorf("dead_letter_topic = %s, want the dead-letter topic", got)
	}
	mustAttr(t, sub, "dead_letter_policy", "max_delivery_attempts")

	// The dead-letter topic has a subscription, or dead letters are lost.
	found := false
	for _, s := range m.ResourcesOfType("google_pubsub_subscription") {
		if a := s.Body.Attributes["topic"]; a != nil && slices.Contains(References(a.Expr), "google_pubsub_topic.dead_letter.id") {
			found = true
		}
	}
	if !found {
		t.Errorf("no subscription on the dead-letter topic")
	}
}

func TestPubSub_serviceAgentIAM(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	agent, ok := m.Locals["pubsub_service_agent"]
	if !ok {
		t.Fatal("local pubsub_service_agent not found")
	}
	if text := m.Text(agent.Expr.Range()); !strings.Contains(text, "@gcp-sa-pubsub.iam.gserviceaccount.com") ||
		!strings.Contains(text, "data.google_project.main.number") {
		t.Errorf("pubsub_service_agent = %s, want service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com", text)
	}
	want := []struct{ typ, role, on string }{
		{"google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.dead_letter.name"},
		{"google_pubsub_subscription_iam_member", "roles/pubsub.subscriber", "google_pubsub_subscription.push.name"},
		{"google_service_account_iam_member", "roles/iam.serviceAccountTokenCreator", "google_service_account.push.name"},
	}
	for _, w := range want {
		found := false
		for _, b := range m.ResourcesOfType(w.typ) {
			if Traversal(b.Body.Attributes["member"].Expr) != "local.pubsub_service_agent" ||
				literalString(b.Body.Attributes["role"].Expr) != w.role {
				continue
			}
			for _, a := range b.Body.Attributes {
				if Traversal(a.Expr) == w.on {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("the Pub/Sub service agent lacks %s on %s", w.role, w.on)
		}
	}
}

// IAM is bound on resources, never project-wide, and the runtime account gets
// exactly what it needs.
func TestIAM_leastPrivilege(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	for _, b := range m.Resources {
		// A custom role definition (google_project_iam_custom_role, …)
		// grants nothing: only grants (member, binding, policy, audit
		// config) are project-wide IAM.
		isGrant := !strings.HasSuffix(b.Type, "_iam_custom_role")
		if isGrant && (strings.HasPrefix(b.Type, "google_project_iam_") || strings.HasPrefix(b.Type, "google_organization_iam_") ||
			strings.HasPrefix(b.Type, "google_folder_iam_")) {
			t.Errorf("%s: project/folder/organisation-wide IAM is not allowed", b.Address())
		}
		if strings.HasSuffix(b.Type, "_iam_binding") || strings.HasSuffix(b.Type, "_iam_policy") {
			t.Errorf("%s: authoritative IAM would remove other grants; use _iam_member", b.Address())
		}
	}

	type grant struct{ typ, role, on string }
	var runtime []grant
	for _, b := range m.Resources {
		if !strings.HasSuffix(b.Type, "_iam_member") {
			continue
		}
		if !slices.Contains(References(b.Body.Attributes["member"].Expr), "google_service_account.runtime.member") {
			continue
		}
		var on string
		for _, key := range []string{"bucket", "secret_id", "topic", "name", "subscription", "service_account_id"} {
			if a := b.Body.Attributes[key]; a != nil {
				on = Traversal(a.Expr)
			}
		}
		runtime = append(runtime, grant{b.Type, literalString(b.Body.Attributes["role"].Expr), on})
	}
	want := []grant{
		{"google_pubsub_topic_iam_member", "roles/pubsub.publisher", "google_pubsub_topic.trigger.name"},
		{"google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", "google_secret_manager_secret.sentry_token.secret_id"},
		{"google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", "google_secret_manager_secret.sentry_audit_token[0].secret_id"},
		{"google_storage_bucket_iam_member", "roles/storage.objectUser", "google_storage_bucket.main.name"},
	}
	slices.SortFunc(runtime, func(a, b grant) int { return strings.Compare(a.typ+a.role, b.typ+b.role) })
	if !slices.Equal(runtime, want) {
		t.Errorf("runtime account grants = %v, want %v", runtime, want)
	}

	// The push account may only invoke this service.
	for _, b := range m.Resources {
		if !strings.HasSuffix(b.Type, "_iam_member") {
			continue
		}
		if !slices.Contains(References(b.Body.Attributes["member"].Expr), "google_service_account.push.member") {
			continue
		}
		if b.Type != "google_cloud_run_v2_service_iam_member" || literalString(b.Body.Attributes["role"].Expr) != "roles/run.invoker" {
			t.Errorf("%s: the push account may only have run.invoker on the service", b.Address())
		}
	}
}

func TestScheduler_targetsTriggerTopic(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	jobs := m.ResourcesOfType("google_cloud_scheduler_job")
	if len(jobs) != 1 {
		t.Fatalf("want one scheduler job, got %d", len(jobs))
	}
	job := jobs[0]
	if got := Traversal(mustAttr(t, job, "pubsub_target", "topic_name").Expr); got != "google_pubsub_topic.trigger.id" {
		t.Errorf("scheduler topic_name = %s, want google_pubsub_topic.trigger.id", got)
	}
	if got := mustString(t, m, mustAttr(t, job, "pubsub_target", "data")); got != "e30=" {
		t.Errorf("scheduler data = %q, want base64 of {}", got)
	}
	if got := mustString(t, m, mustAttr(t, job, "time_zone")); got != "Etc/UTC" {
		t.Errorf("time_zone = %q, want Etc/UTC", got)
	}
	mustAttr(t, job, "retry_config", "retry_count")
	if got := Traversal(mustAttr(t, job, "schedule").Expr); got != "var.schedule" {
		t.Errorf("schedule = %s, want var.schedule", got)
	}
}

func TestStorage_prefixes(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	data, state := m.Variables["data_prefix"], m.Variables["state_prefix"]
	if data == nil || state == nil || !data.HasDefault || !state.HasDefault {
		t.Fatal("data_prefix and state_prefix need defaults")
	}
	d, s := data.Default.AsString(), state.Default.AsString()
	if strings.HasPrefix(s, d) || strings.HasPrefix(d, s) {
		t.Errorf("default state prefix %q overlaps default data prefix %q", s, d)
	}
	if c := config.Variables(); defaultOf(c, "GCS_PREFIX") != d || defaultOf(c, "STATE_KEY") != s {
		t.Errorf("Terraform defaults (%q, %q) differ from internal/config's", d, s)
	}

	// The variable validation refuses overlapping prefixes (the reference default included).
	cases := []struct {
		state string
		ok    bool
	}{
		{"sentry/state/", true},
		{"state/", true},
		{"sentry/events/state/", false},
		{"sentry/events/", false},
		{"sentry/", false},
		{"/sentry/state/", false},
		{"sentry/state", false},
	}
	for _, tc := range cases {
		failed, err := m.CheckVariable("state_prefix", cty.StringVal(tc.state), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(failed) == 0; got != tc.ok {
			t.Errorf("state_prefix=%q accepted=%v (%q), want %v", tc.state, got, failed, tc.ok)
		}
	}

	b := mustResource(t, m, "google_storage_bucket", "main")
	if v := mustEval(t, m, mustAttr(t, b, "uniform_bucket_level_access")); !v.True() {
		t.Errorf("uniform_bucket_level_access must be true")
	}
	if got := mustString(t, m, mustAttr(t, b, "public_access_prevention")); got != "enforced" {
		t.Errorf("public_access_prevention = %q, want enforced", got)
	}
	if len(Blocks(b.Body, "retention_policy")) > 0 || len(Blocks(b.Body, "versioning")) > 0 {
		t.Errorf("a retention policy or versioning would break compare-and-swap on state objects")
	}
}

func defaultOf(vars []config.Variable, name string) string {
	for _, v := range vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func TestSecOps_feed(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	feed := mustResource(t, m, "google_chronicle_feed", "main")
	if !strings.Contains(m.Text(mustAttr(t, feed, "count").Expr.Range()), "var.secops_feed_enabled") {
		t.Errorf("the feed must be gated by var.secops_feed_enabled")
	}
	if v := m.Variables["secops_feed_enabled"]; v == nil || !v.HasDefault || v.Default.True() {
		t.Errorf("secops_feed_enabled must default to false")
	}
	if got := literalString(mustAttr(t, feed, "details", "feed_source_type").Expr); got != "GOOGLE_CLOUD_STORAGE_V2" {
		t.Errorf("feed_source_type = %q", got)
	}
	if lt := m.Text(mustAttr(t, feed, "details", "log_type").Expr.Range()); !strings.HasSuffix(lt, `/logTypes/SENTRY"`) {
		t.Errorf("log_type = %s, want …/logTypes/SENTRY", lt)
	}
	uri := m.Text(mustAttr(t, feed, "details", "gcs_v2_settings", "bucket_uri").Expr.Range())
	if !strings.Contains(uri, "var.data_prefix") || strings.Contains(uri, "state_prefix") {
		t.Errorf("bucket_uri = %s, want the data prefix only", uri)
	}
	if r := m.Resource("google_storage_bucket_iam_member", "secops_reader"); r == nil ||
		literalString(r.Body.Attributes["role"].Expr) != "roles/storage.objectViewer" {
		t.Errorf("the feed's service account needs objectViewer on the bucket")
	}
}

func TestMonitoring(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	policies := m.ResourcesOfType("google_monitoring_alert_policy")
	names := make([]string, 0, len(policies))
	for _, p := range policies {
		names = append(names, p.Name)
		if got := Traversal(mustAttr(t, p, "notification_channels").Expr); got != "var.notification_channels" {
			t.Errorf("%s: notification_channels = %s", p.Address(), got)
		}
		mustAttr(t, p, "documentation", "content")
	}
	slices.Sort(names)
	if want := []string{"dead_letter", "error_kind", "no_successful_run"}; !slices.Equal(names, want) {
		t.Errorf("alert policies = %v, want %v", names, want)
	}
	if v := m.Variables["notification_channels"]; v == nil || !v.HasDefault || v.Default.LengthInt() != 0 {
		t.Errorf("notification_channels must default to []")
	}
	dl := mustResource(t, m, "google_monitoring_alert_policy", "dead_letter")
	if f := m.Text(mustAttr(t, dl, "conditions", "condition_threshold", "filter").Expr.Range()); !strings.Contains(f, "google_pubsub_subscription.dead_letter.name") {
		t.Errorf("dead-letter alert filter does not watch the dead-letter subscription: %s", f)
	}

	// One alert per error kind the service logs.
	kinds, ok := m.Local("error_kind_alerts")
	if !ok || !kinds.IsKnown() {
		t.Fatal("local.error_kind_alerts is missing")
	}
	var got []string
	for k := range kinds.AsValueMap() {
		got = append(got, k)
	}
	slices.Sort(got)
	// The kinds the service logs, named by the code that logs them.
	want := []string{events.ErrorKindProjectFailing, failure.ErrorKindAuth, coverage.ErrorKindMissing}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("error kinds with an alert = %v, want the kinds the service logs: %v", got, want)
	}

	// The "no successful run" window defaults to three schedule periods.
	if v, _ := m.Local("no_success_minutes"); !v.IsKnown() || !v.Equals(cty.NumberIntVal(30)).True() {
		t.Errorf("no_success_minutes = %#v, want 30 (3 × the default 10-minute schedule)", v)
	}
	metrics := mustResource(t, m, "google_logging_metric", "run_summary")
	fe, err := m.Eval(metrics.Body.Attributes["for_each"].Expr)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for k := range fe.AsValueMap() {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	if want := []string{"events_written", "lag_seconds", "rate_limited", "requests"}; !slices.Equal(fields, want) {
		t.Errorf("run summary metrics = %v, want %v", fields, want)
	}
	if f, _ := m.Local("run_summary_filter"); !f.IsKnown() || !strings.Contains(f.AsString(), `jsonPayload.message="run summary"`) {
		t.Errorf("run_summary_filter = %#v", f)
	}
}

func TestAPIs_enabledWithoutDisableOnDestroy(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	ps := mustResource(t, m, "google_project_service", "main")
	if v := mustEval(t, m, mustAttr(t, ps, "disable_on_destroy")); v.True() {
		t.Errorf("disable_on_destroy must be false")
	}
	services, _ := m.Local("services")
	for _, want := range []string{"run.googleapis.com", "pubsub.googleapis.com", "cloudscheduler.googleapis.com",
		"secretmanager.googleapis.com", "storage.googleapis.com", "iam.googleapis.com"} {
		if !services.IsKnown() || !services.HasElement(cty.StringVal(want)).True() {
			t.Errorf("API %s is not enabled", want)
		}
	}
}

// cloudbuildSteps splits cloudbuild.yaml's steps into "key: value" maps of
// their top-level keys (list values kept as their raw text). The file keeps a
// simple layout ("  - id: …" starts a step) so no YAML library is needed.
func cloudbuildSteps(t *testing.T) ([]map[string]string, string) {
	t.Helper()
	src, err := os.ReadFile("../../cloudbuild.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	_, after, ok := strings.Cut(text, "\nsteps:\n")
	if !ok {
		t.Fatal("cloudbuild.yaml has no steps")
	}
	if i := strings.Index(after, "\n\n"+"images:"); i >= 0 {
		after = after[:i]
	}
	var steps []map[string]string
	var cur map[string]string
	var lastKey string
	for line := range strings.SplitSeq(after, "\n") {
		switch {
		case strings.HasPrefix(line, "  - "):
			cur = make(map[string]string)
			steps = append(steps, cur)
			line = "    " + strings.TrimPrefix(line, "  - ")
			fallthrough
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			if cur == nil {
				t.Fatalf("cloudbuild.yaml: line outside a step: %q", line)
			}
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			cur[k], lastKey = strings.TrimSpace(v), k
		case strings.HasPrefix(line, "      ") && cur != nil:
			cur[lastKey] += "\n" + strings.TrimSpace(line)
		}
	}
	return steps, text
}

func TestCloudBuild(t *testing.T) {
	t.Parallel()

	steps, text := cloudbuildSteps(t)
	if len(steps) < 4 {
		t.Fatalf("found %d steps, want test, build, push and deploy", len(steps))
	}
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:[0-9]+\.[0-9]+\.[0-9]+[a-z0-9.-]*$`)
	ids := make(map[string]bool)
	for i, s := range steps {
		id := s["id"]
		if id == "" {
			t.Errorf("step %d has no id", i)
		}
		ids[id] = true
		if s["waitFor"] == "" {
			t.Errorf("step %q has no waitFor", id)
		}
		for _, dep := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(s["waitFor"], -1) {
			if dep[1] != "-" && !ids[dep[1]] {
				t.Errorf("step %q waits for %q, which is not an earlier step", id, dep[1])
			}
		}
		if !pinned.MatchString(s["name"]) {
			t.Errorf("step %q: builder image %q is not pinned to a version", id, s["name"])
		}
	}
	for _, want := range []string{"vet-test", "build", "push", "deploy"} {
		if !ids[want] {
			t.Errorf("no %q step", want)
		}
	}
	var vetTest, build, push, deploy map[string]string
	for _, s := range steps {
		switch s["id"] {
		case "vet-test":
			vetTest = s
		case "build":
			build = s
		case "push":
			push = s
		case "deploy":
			deploy = s
		}
	}
	if vetTest != nil && !strings.Contains(vetTest["args"], "go test -race -count=1 -short ./...") {
		t.Errorf("vet-test does not run the README's test command (with -short: no emulator in the Go image): %s", vetTest["args"])
	}
	if push != nil && !strings.Contains(push["args"], ":${COMMIT_SHA}") {
		t.Errorf("push does not tag the image with the commit: %s", push["args"])
	}
	if deploy != nil && (!strings.Contains(deploy["args"], "--image=${_IMAGE}:${COMMIT_SHA}") || !strings.Contains(deploy["waitFor"], `"push"`)) {
		t.Errorf("deploy does not deploy the pushed image after the push: %v", deploy)
	}
	// The binary must not report "dev": the build stamps the commit unless
	// a release name is given.
	if !regexp.MustCompile(`(?m)^\s*_VERSION: \$\{COMMIT_SHA\}`).MatchString(text) || build == nil || !strings.Contains(build["args"], "--build-arg=VERSION=${_VERSION}") {
		t.Errorf("the build does not stamp the version with the commit by default")
	}

	// Substitutions: user-defined ones start with "_" and have defaults.
	_, subs, _ := strings.Cut(text, "\nsubstitutions:\n")
	subs, _, _ = strings.Cut(subs, "\n\n")
	used := regexp.MustCompile(`\$\{(_[A-Z0-9_]+)\}`).FindAllStringSubmatch(text, -1)
	for _, u := range used {
		if !strings.Contains(subs, "  "+u[1]+": ") {
			t.Errorf("substitution %s is used but has no default", u[1])
		}
	}
	for line := range strings.SplitSeq(subs, "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "_") {
			t.Errorf("substitution %q must start with _", k)
		}
	}
	if !strings.Contains(text, "logging: CLOUD_LOGGING_ONLY") {
		t.Errorf("cloudbuild.yaml sets no logging option")
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()

	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	// The base images are build arguments (so that cloudbuild.yaml can pin
	// them by digest); their defaults are the images.
	args := make(map[string]string)
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)=(\S+)$`).FindAllStringSubmatch(text, -1) {
		args[m[1]] = m[2]
	}
	froms := regexp.MustCompile(`(?m)^FROM \$\{(\w+)\}`).FindAllStringSubmatch(text, -1)
	if len(froms) != 2 || regexp.MustCompile(`(?m)^FROM [^$]`).MatchString(text) {
		t.Fatalf("want a two-stage build from two build arguments, found FROM %v", froms)
	}
	digest := `(@sha256:[0-9a-f]{64})?$`
	builder, runtime := args[froms[0][1]], args[froms[1][1]]
	if !regexp.MustCompile(`^golang:1\.26\.[0-9]+-bookworm` + digest).MatchString(builder) {
		t.Errorf("builder %s=%q is not a pinned golang:1.26.x", froms[0][1], builder)
	}
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian12:nonroot` + digest).MatchString(runtime) {
		t.Errorf("final image %s=%q, want distroless static nonroot", froms[1][1], runtime)
	}
	// Cloud Build passes the same images, so that a digest given there is
	// the one built from.
	_, cb := cloudbuildSteps(t)
	for _, a := range []struct{ arg, sub, def string }{{froms[0][1], "_GO_IMAGE", builder}, {froms[1][1], "_RUNTIME_IMAGE", runtime}} {
		if !strings.Contains(cb, "--build-arg="+a.arg+"=${"+a.sub+"}") || !strings.Contains(cb, "\n  "+a.sub+": "+a.def+"\n") {
			t.Errorf("cloudbuild.yaml does not pass %s as --build-arg=%s=${%s} with the Dockerfile's default %q", a.sub, a.arg, a.sub, a.def)
		}
	}
	download := strings.Index(text, "go mod download")
	copyAll := strings.Index(text, "COPY . .")
	if download < 0 || copyAll < 0 || download > copyAll {
		t.Errorf("go mod download must run before the source is copied")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "internal/buildinfo.Version=${VERSION}",
		"internal/buildinfo.Commit=${COMMIT}", "USER nonroot:nonroot", `ENTRYPOINT ["/server"]`} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// With ON_SUCCESS the SecOps feed may delete transferred objects, and only
// that: a custom role with storage.objects.get, list and
// delete (no create or overwrite, unlike roles/storage.objectUser), bound
// on the bucket under a data-prefix condition.
func TestIAM_secopsDeleterLeastPrivilege(t *testing.T) {
	t.Parallel()

	m := loadModule(t)
	roles := m.ResourcesOfType("google_project_iam_custom_role")
	if len(roles) != 1 || roles[0].Name != "secops_deleter" {
		t.Fatalf("want one custom role, secops_deleter; got %d", len(roles))
	}
	tuple, ok := mustAttr(t, roles[0], "permissions").Expr.(*hclsyntax.TupleConsExpr)
	if !ok {
		t.Fatal("permissions must be a literal list")
	}
	var perms []string
	for _, e := range tuple.Exprs {
		perms = append(perms, literalString(e))
	}
	slices.Sort(perms)
	if want := []string{"storage.objects.delete", "storage.objects.get", "storage.objects.list"}; !slices.Equal(perms, want) {
		t.Errorf("custom role permissions = %q, want %q", perms, want)
	}
	var deleter *Block
	for _, b := range m.ResourcesOfType("google_storage_bucket_iam_member") {
		if b.Name == "secops_deleter" {
			deleter = b
		}
	}
	if deleter == nil {
		t.Fatal("no google_storage_bucket_iam_member.secops_deleter")
	}
	if got := Traversal(mustAttr(t, deleter, "role").Expr); got != "google_project_iam_custom_role.secops_deleter[0].name" {
		t.Errorf("deleter role = %s, want the custom role's name", got)
	}
	if got := Traversal(mustAttr(t, deleter, "bucket").Expr); got != "google_storage_bucket.main.name" {
		t.Errorf("deleter bound on %s, want the bucket", got)
	}
	mustAttr(t, deleter, "condition", "expression")
}
