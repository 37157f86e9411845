package config

import (
	"reflect"
	"strings"
	"time"
)

// Cloud Run roles of a variable (the cloudrun struct tag).
const (
	// CloudRunRequired marks a variable the Cloud Run deployment must set.
	CloudRunRequired = "required"
	// CloudRunPlatform marks a variable Cloud Run sets itself (PORT,
	// K_SERVICE); a deployment must not set it.
	CloudRunPlatform = "platform"
)

// Variable describes one environment variable, for documentation and for
// tests that hold the README and the Terraform against the code.
type Variable struct {
	Name        string // e.g. "GCS_PREFIX"
	Default     string // "" when none
	Required    bool   // must be set and non-empty (collect and serve)
	Secret      bool   // redacted in logs; from Secret Manager on Cloud Run
	CloudRun    string // CloudRunRequired, CloudRunPlatform or ""
	List        bool   // comma-separated list
	Description string
}

type kind int

const (
	kindString kind = iota
	kindInt
	kindPort
	kindDuration
	kindBool
	kindList
)

type field struct {
	Variable
	kind kind
}

// Variables lists every environment variable of Config, in declaration order,
// derived from the struct tags.
func Variables() []Variable {
	fs := fields()
	out := make([]Variable, len(fs))
	for i, f := range fs {
		out[i] = f.Variable
	}
	return out
}

// fields returns one entry per Config field, in field order.
func fields() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("env")
		parts := strings.Split(tag, ",")
		f := field{Variable: Variable{
			Name:        strings.TrimSpace(parts[0]),
			Secret:      sf.Tag.Get("secret") == "true",
			CloudRun:    sf.Tag.Get("cloudrun"),
			Description: sf.Tag.Get("desc"),
		}}
		for j := 1; j < len(parts); j++ {
			opt := strings.TrimSpace(parts[j])
			switch {
			case opt == "required":
				f.Required = true
			case strings.HasPrefix(opt, "default="):
				// A default may itself contain commas: keep the rest of the tag.
				f.Default = strings.TrimPrefix(strings.TrimSpace(strings.Join(parts[j:], ",")), "default=")
				j = len(parts)
			}
		}
		switch {
		case sf.Type == reflect.TypeFor[time.Duration]():
			f.kind = kindDuration
		case sf.Type.Kind() == reflect.Int && f.Name == "PORT":
			f.kind = kindPort
		case sf.Type.Kind() == reflect.Int:
			f.kind = kindInt
		case sf.Type.Kind() == reflect.Bool:
			f.kind = kindBool
		case sf.Type.Kind() == reflect.Slice:
			f.kind, f.List = kindList, true
		}
		out = append(out, f)
	}
	return out
}

func defaultOf(name string) string {
	for _, f := range fields() {
		if f.Name == name {
			return f.Default
		}
	}
	return ""
}
