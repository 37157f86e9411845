package tfcheck

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Evaluation of expressions, locals and variable validations, with the
// Terraform functions the module uses.

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
