// Package tfcheck loads the Terraform root module in terraform/ with the HCL
// parser and checks it without any provider: every resource and data block is
// held against the Google provider's schema (standing in for terraform
// validate, which cannot run offline), and expressions can be evaluated with
// the variables' defaults and the module's locals, so tests can assert the
// invariants that matter (environment, audiences, IAM scoping, prefixes).
package tfcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Module is a parsed Terraform root module.
type Module struct {
	Resources []*Block // resource and data blocks, in file order
	Variables map[string]*Variable
	Outputs   map[string]*Output
	Locals    map[string]*hclsyntax.Attribute

	files  map[string][]byte // file name → source, for expression text
	ctx    *hcl.EvalContext
	locals map[string]cty.Value
}

// Block is one resource or data block.
type Block struct {
	Kind string // "resource" or "data"
	Type string // e.g. "google_pubsub_subscription"
	Name string // e.g. "push"
	Body *hclsyntax.Body
}

// Address is the block's Terraform address, e.g. google_pubsub_topic.trigger.
func (b *Block) Address() string {
	if b.Kind == "data" {
		return "data." + b.Type + "." + b.Name
	}
	return b.Type + "." + b.Name
}

// Variable is one variable block.
type Variable struct {
	Name        string
	Description string
	Type        cty.Type // cty.NilType when the block has no type
	Default     cty.Value
	HasDefault  bool
	Validations []*hclsyntax.Block
	Body        *hclsyntax.Body
}

// Output is one output block.
type Output struct {
	Name        string
	Description string
	Value       hcl.Expression
}

// Load parses every *.tf file of dir.
func Load(dir string) (*Module, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", dir, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("failed to load module: no .tf files in %s", dir)
	}
	sort.Strings(names)
	files := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", n, err)
		}
		files[n] = b
	}
	return Parse(files)
}

// Parse builds a Module from file name → HCL source.
func Parse(files map[string][]byte) (*Module, error) {
	m := &Module{
		Variables: make(map[string]*Variable),
		Outputs:   make(map[string]*Output),
		Locals:    make(map[string]*hclsyntax.Attribute),
		files:     files,
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	p := hclparse.NewParser()
	var errs []error
	for _, n := range names {
		f, diags := p.ParseHCL(files[n], n)
		if diags.HasErrors() {
			errs = append(errs, fmt.Errorf("failed to parse %s: %w", n, diags))
			continue
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			errs = append(errs, fmt.Errorf("failed to parse %s: not native HCL syntax", n))
			continue
		}
		for _, blk := range body.Blocks {
			if err := m.addBlock(blk); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.buildContext()
	return m, nil
}

func (m *Module) addBlock(blk *hclsyntax.Block) error {
	at := blk.DefRange().String()
	switch blk.Type {
	case "resource", "data":
		if len(blk.Labels) != 2 {
			return fmt.Errorf("%s: %s block needs two labels", at, blk.Type)
		}
		m.Resources = append(m.Resources, &Block{Kind: blk.Type, Type: blk.Labels[0], Name: blk.Labels[1], Body: blk.Body})
	case "variable":
		if len(blk.Labels) != 1 {
			return fmt.Errorf("%s: variable block needs one label", at)
		}
		v := &Variable{Name: blk.Labels[0], Body: blk.Body, Type: cty.NilType}
		if a, ok := blk.Body.Attributes["description"]; ok {
			v.Description = literalString(a.Expr)
		}
		if a, ok := blk.Body.Attributes["type"]; ok {
			ty, diags := typeexpr.TypeConstraint(a.Expr)
			if diags.HasErrors() {
				return fmt.Errorf("%s: variable %q: bad type: %w", at, v.Name, diags)
			}
			v.Type = ty
		}
		if a, ok := blk.Body.Attributes["default"]; ok {
			val, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return fmt.Errorf("%s: variable %q: default is not a constant: %w", at, v.Name, diags)
			}
			if v.Type != cty.NilType {
				conv, err := convert.Convert(val, v.Type)
				if err != nil {
					return fmt.Errorf("%s: variable %q: default does not match its type: %w", at, v.Name, err)
				}
				val = conv
			}
			v.Default, v.HasDefault = val, true
		}
		for _, b := range blk.Body.Blocks {
			if b.Type == "validation" {
				v.Validations = append(v.Validations, b)
			}
		}
		m.Variables[v.Name] = v
	case "output":
		if len(blk.Labels) != 1 {
			return fmt.Errorf("%s: output block needs one label", at)
		}
		o := &Output{Name: blk.Labels[0]}
		if a, ok := blk.Body.Attributes["description"]; ok {
			o.Description = literalString(a.Expr)
		}
		if a, ok := blk.Body.Attributes["value"]; ok {
			o.Value = a.Expr
		}
		m.Outputs[o.Name] = o
	case "locals":
		for name, a := range blk.Body.Attributes {
			if _, dup := m.Locals[name]; dup {
				return fmt.Errorf("%s: local %q defined twice", at, name)
			}
			m.Locals[name] = a
		}
	}
	return nil
}

// literalString returns a constant string expression's value, or "".
func literalString(e hcl.Expression) string {
	v, diags := e.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Resource returns the resource (kind "resource") with that type and name.
func (m *Module) Resource(typ, name string) *Block {
	for _, b := range m.Resources {
		if b.Kind == "resource" && b.Type == typ && b.Name == name {
			return b
		}
	}
	return nil
}

// ResourcesOfType returns every resource block of that type.
func (m *Module) ResourcesOfType(typ string) []*Block {
	var out []*Block
	for _, b := range m.Resources {
		if b.Kind == "resource" && b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// Text returns the source text of an expression (or any range).
func (m *Module) Text(r hcl.Range) string {
	src, ok := m.files[r.Filename]
	if !ok {
		return ""
	}
	return strings.TrimSpace(string(r.SliceBytes(src)))
}

// Attr returns the attribute at a path of nested block names, e.g.
// Attr(b.Body, "push_config", "oidc_token", "audience"); the first block of
// each name is followed.
func Attr(body *hclsyntax.Body, path ...string) *hclsyntax.Attribute {
	if len(path) == 0 {
		return nil
	}
	for _, name := range path[:len(path)-1] {
		blocks := Blocks(body, name)
		if len(blocks) == 0 {
			return nil
		}
		body = blocks[0].Body
	}
	return body.Attributes[path[len(path)-1]]
}

// Blocks returns the nested blocks of that type (static ones only).
func Blocks(body *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// DynamicBlocks returns the dynamic blocks generating blocks of that type.
func DynamicBlocks(body *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ {
			out = append(out, b)
		}
	}
	return out
}

// Traversal returns the reference an expression is made of, such as
// "local.push_audience" or "google_pubsub_topic.trigger.id", or "" when the
// expression is not a plain reference.
func Traversal(e hcl.Expression) string {
	if w, ok := e.(*hclsyntax.TemplateWrapExpr); ok {
		e = w.Wrapped
	}
	t, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() {
		return ""
	}
	var sb strings.Builder
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			sb.WriteString(s.Name)
		case hcl.TraverseAttr:
			sb.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.Number {
				sb.WriteString("[" + s.Key.AsBigFloat().Text('f', -1) + "]")
			} else if s.Key.Type() == cty.String {
				sb.WriteString("[" + strconv.Quote(s.Key.AsString()) + "]")
			}
		}
	}
	return sb.String()
}

// References returns every reference in an expression, rendered like
// Traversal (e.g. "google_service_account.runtime.member").
func References(e hcl.Expression) []string {
	var out []string
	for _, t := range e.Variables() {
		var sb strings.Builder
		for _, step := range t {
			switch s := step.(type) {
			case hcl.TraverseRoot:
				sb.WriteString(s.Name)
			case hcl.TraverseAttr:
				sb.WriteString("." + s.Name)
			}
		}
		out = append(out, sb.String())
	}
	return out
}
