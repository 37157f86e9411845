// Package tfcheck loads the Terraform root module in terraform/ with the HCL
// parser and checks it without any provider: every resource and data block is
// held against the Google provider's schema (standing in for terraform
// validate, which cannot run offline), and expressions can be evaluated with
// the variables' defaults and the module's locals, so tests can assert the
// invariants that matter (environment, audiences, IAM scoping, prefixes).
package tfcheck

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
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

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

// Functions are the Terraform functions the module uses, for evaluation.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		"alltrue":         alltrueFunc,
		"base64encode":    base64encodeFunc,
		"can":             tryfunc.CanFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"endswith":        endswithFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"join":            stdlib.JoinFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"replace":         stdlib.ReplaceFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"split":           stdlib.SplitFunc,
		"startswith":      startswithFunc,
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":        stdlib.MakeToFunc(cty.String),
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"try":             tryfunc.TryFunc,
		"upper":           stdlib.UpperFunc,
	}
}

// buildContext makes the evaluation context: var.* from defaults (unknown
// without one), every resource and data source unknown, and local.* evaluated
// in dependency order (a local that cannot be evaluated stays unknown).
func (m *Module) buildContext() {
	vars := make(map[string]cty.Value, len(m.Variables))
	for name, v := range m.Variables {
		switch {
		case v.HasDefault:
			vars[name] = v.Default
		case v.Type != cty.NilType:
			vars[name] = cty.UnknownVal(v.Type)
		default:
			vars[name] = cty.DynamicVal
		}
	}
	m.ctx = m.contextWith(vars)
}

func (m *Module) contextWith(vars map[string]cty.Value) *hcl.EvalContext {
	resources := make(map[string]map[string]cty.Value)
	data := make(map[string]map[string]cty.Value)
	for _, b := range m.Resources {
		target := resources
		if b.Kind == "data" {
			target = data
		}
		if target[b.Type] == nil {
			target[b.Type] = make(map[string]cty.Value)
		}
		target[b.Type][b.Name] = cty.DynamicVal
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: Functions()}
	for typ, byName := range resources {
		ctx.Variables[typ] = cty.ObjectVal(byName)
	}
	dataObj := make(map[string]cty.Value, len(data))
	for typ, byName := range data {
		dataObj[typ] = cty.ObjectVal(byName)
	}
	ctx.Variables["data"] = cty.ObjectVal(dataObj)
	ctx.Variables["var"] = cty.ObjectVal(vars)

	locals := make(map[string]cty.Value, len(m.Locals))
	for range len(m.Locals) + 1 {
		progress := false
		for name, a := range m.Locals {
			if _, done := locals[name]; done {
				continue
			}
			ctx.Variables["local"] = cty.ObjectVal(locals)
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				continue
			}
			locals[name] = v
			progress = true
		}
		if !progress {
			break
		}
	}
	for name := range m.Locals {
		if _, done := locals[name]; !done {
			locals[name] = cty.DynamicVal
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	m.locals = locals
	return ctx
}

// Local returns a local's value (unknown when it depends on resources or
// could not be evaluated).
func (m *Module) Local(name string) (cty.Value, bool) {
	v, ok := m.locals[name]
	return v, ok
}

// Eval evaluates an expression with the variables' defaults and the locals.
func (m *Module) Eval(e hcl.Expression) (cty.Value, error) {
	v, diags := e.Value(m.ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("failed to evaluate %s: %w", m.Text(e.Range()), diags)
	}
	return v, nil
}

// CheckVariable evaluates the validation rules of a variable for a value, with
// the other variables at their defaults (overrides may set some of them). It
// returns the error messages of the failing rules.
func (m *Module) CheckVariable(name string, value cty.Value, overrides map[string]cty.Value) ([]string, error) {
	v, ok := m.Variables[name]
	if !ok {
		return nil, fmt.Errorf("failed to check variable: no variable %q", name)
	}
	if v.Type != cty.NilType {
		conv, err := convert.Convert(value, v.Type)
		if err != nil {
			return []string{fmt.Sprintf("wrong type: %v", err)}, nil
		}
		value = conv
	}
	vars := make(map[string]cty.Value)
	for k, val := range m.ctx.Variables["var"].AsValueMap() {
		vars[k] = val
	}
	for k, val := range overrides {
		vars[k] = val
	}
	vars[name] = value
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: Functions()}
	var failed []string
	for _, rule := range v.Validations {
		cond, ok := rule.Body.Attributes["condition"]
		if !ok {
			return nil, fmt.Errorf("failed to check variable %q: validation without condition", name)
		}
		res, diags := cond.Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("failed to evaluate validation of %q: %w", name, diags)
		}
		if !res.IsKnown() || res.IsNull() {
			return nil, fmt.Errorf("failed to evaluate validation of %q: result unknown", name)
		}
		if res.False() {
			msg := ""
			if a, ok := rule.Body.Attributes["error_message"]; ok {
				msg = literalString(a.Expr)
			}
			failed = append(failed, msg)
		}
	}
	return failed, nil
}

var startswithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "prefix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasPrefix(args[0].AsString(), args[1].AsString())), nil
	},
})

var endswithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "suffix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasSuffix(args[0].AsString(), args[1].AsString())), nil
	},
})

var alltrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for _, v := range args[0].AsValueSlice() {
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

var base64encodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

// ---------------------------------------------------------------------------
// Provider schema
// ---------------------------------------------------------------------------

// Schema is the part of `terraform providers schema -json` the checker needs.
type Schema struct {
	Resources   map[string]*SchemaBlock `json:"resource_schemas"`
	DataSources map[string]*SchemaBlock `json:"data_source_schemas"`
}

// SchemaBlock is a block's attributes and nested block types.
type SchemaBlock struct {
	Attributes map[string]*SchemaAttribute `json:"attributes"`
	BlockTypes map[string]*SchemaNested    `json:"block_types"`
}

// SchemaAttribute is one attribute's flags.
type SchemaAttribute struct {
	Type     json.RawMessage `json:"type"`
	Required bool            `json:"required"`
	Optional bool            `json:"optional"`
	Computed bool            `json:"computed"`
}

// SchemaNested is a nested block type.
type SchemaNested struct {
	Block       SchemaBlock `json:"block"`
	NestingMode string      `json:"nesting_mode"`
	MinItems    int         `json:"min_items"`
	MaxItems    int         `json:"max_items"`
}

// LoadSchema reads a provider schema JSON file. Both the whole output of
// `terraform providers schema -json` and one provider's object are accepted.
func LoadSchema(path string) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read provider schema: %w", err)
	}
	var s Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("failed to decode provider schema %s: %w", path, err)
	}
	if len(s.Resources) == 0 {
		var whole struct {
			ProviderSchemas map[string]Schema `json:"provider_schemas"`
		}
		if err := json.Unmarshal(b, &whole); err == nil {
			for _, ps := range whole.ProviderSchemas {
				if len(ps.Resources) > 0 {
					s = ps
					break
				}
			}
		}
	}
	if len(s.Resources) == 0 {
		return nil, fmt.Errorf("failed to decode provider schema %s: no resource schemas", path)
	}
	return &s, nil
}

// Meta-arguments Terraform accepts on every resource and data block.
var (
	metaAttributes = map[string]bool{"count": true, "for_each": true, "depends_on": true, "provider": true}
	lifecycleAttrs = map[string]bool{
		"create_before_destroy": true, "prevent_destroy": true, "ignore_changes": true, "replace_triggered_by": true,
	}
	lifecycleBlocks = map[string]bool{"precondition": true, "postcondition": true}
)

// Check holds every resource and data block of m against the schema: unknown
// resource types, attributes and blocks, computed-only attributes that are set,
// missing required attributes and blocks, and more blocks than max_items all
// fail. Dynamic blocks are checked through their content block.
func (s *Schema) Check(m *Module) []error {
	var errs []error
	for _, b := range m.Resources {
		schemas := s.Resources
		if b.Kind == "data" {
			schemas = s.DataSources
		}
		sb, ok := schemas[b.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown %s type %q in the provider schema",
				b.Body.SrcRange.Filename, b.Body.SrcRange.Start.Line, b.Address(), b.Kind, b.Type))
			continue
		}
		errs = append(errs, checkBody(b.Address(), b.Body, sb, true)...)
	}
	return errs
}

func checkBody(path string, body *hclsyntax.Body, sb *SchemaBlock, top bool) []error {
	var errs []error
	fail := func(r hcl.Range, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", r.Filename, r.Start.Line, path, fmt.Sprintf(format, args...)))
	}
	for name, a := range body.Attributes {
		if top && metaAttributes[name] {
			continue
		}
		sa, ok := sb.Attributes[name]
		switch {
		case !ok:
			if _, isBlock := sb.BlockTypes[name]; isBlock {
				fail(a.SrcRange, "%q is a block, not an attribute", name)
			} else {
				fail(a.SrcRange, "unknown attribute %q", name)
			}
		case sa.Computed && !sa.Optional && !sa.Required:
			fail(a.SrcRange, "attribute %q is read-only (computed)", name)
		}
	}
	for name, sa := range sb.Attributes {
		if sa.Required {
			if _, ok := body.Attributes[name]; !ok {
				fail(body.SrcRange, "missing required attribute %q", name)
			}
		}
	}

	counts := make(map[string]int)
	dynamic := make(map[string]bool)
	for _, blk := range body.Blocks {
		switch {
		case top && blk.Type == "lifecycle":
			errs = append(errs, checkLifecycle(path, blk)...)
			continue
		case top && (blk.Type == "provisioner" || blk.Type == "connection"):
			continue
		case blk.Type == "dynamic":
			if len(blk.Labels) != 1 {
				fail(blk.DefRange(), "dynamic block needs one label")
				continue
			}
			name := blk.Labels[0]
			nested, ok := sb.BlockTypes[name]
			if !ok {
				fail(blk.DefRange(), "unknown block %q (dynamic)", name)
				continue
			}
			dynamic[name] = true
			for _, a := range blk.Body.Attributes {
				if a.Name != "for_each" && a.Name != "iterator" && a.Name != "labels" {
					fail(a.SrcRange, "dynamic %q: unknown argument %q", name, a.Name)
				}
			}
			if _, ok := blk.Body.Attributes["for_each"]; !ok {
				fail(blk.DefRange(), "dynamic %q: missing for_each", name)
			}
			contents := Blocks(blk.Body, "content")
			if len(contents) != 1 {
				fail(blk.DefRange(), "dynamic %q: needs exactly one content block", name)
				continue
			}
			errs = append(errs, checkBody(path+"."+name, contents[0].Body, &nested.Block, false)...)
			continue
		}
		nested, ok := sb.BlockTypes[blk.Type]
		if !ok {
			if _, isAttr := sb.Attributes[blk.Type]; isAttr {
				fail(blk.DefRange(), "%q is an attribute, not a block (use %s = ...)", blk.Type, blk.Type)
			} else {
				fail(blk.DefRange(), "unknown block %q", blk.Type)
			}
			continue
		}
		counts[blk.Type]++
		errs = append(errs, checkBody(path+"."+blk.Type, blk.Body, &nested.Block, false)...)
	}
	for name, nested := range sb.BlockTypes {
		n := counts[name]
		limit := nested.MaxItems
		if nested.NestingMode == "single" {
			limit = 1
		}
		if limit > 0 && n > limit {
			fail(body.SrcRange, "block %q appears %d times, at most %d allowed", name, n, limit)
		}
		if nested.MinItems > 0 && n < nested.MinItems && !dynamic[name] {
			fail(body.SrcRange, "block %q appears %d times, at least %d required", name, n, nested.MinItems)
		}
	}
	return errs
}

func checkLifecycle(path string, blk *hclsyntax.Block) []error {
	var errs []error
	for name, a := range blk.Body.Attributes {
		if !lifecycleAttrs[name] {
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown lifecycle argument %q",
				a.SrcRange.Filename, a.SrcRange.Start.Line, path, name))
		}
	}
	for _, b := range blk.Body.Blocks {
		if !lifecycleBlocks[b.Type] {
			r := b.DefRange()
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown lifecycle block %q", r.Filename, r.Start.Line, path, b.Type))
		}
	}
	return errs
}
