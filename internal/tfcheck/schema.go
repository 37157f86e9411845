package tfcheck

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Checking the module against the Google provider's schema.

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
			name, derrs := checkDynamic(path, blk, sb)
			if name != "" {
				dynamic[name] = true
			}
			errs = append(errs, derrs...)
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

// checkDynamic checks a dynamic block against the schema of the block it
// generates, and returns that block's name ("" when unknown).
func checkDynamic(path string, blk *hclsyntax.Block, sb *SchemaBlock) (string, []error) {
	var errs []error
	fail := func(r hcl.Range, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", r.Filename, r.Start.Line, path, fmt.Sprintf(format, args...)))
	}
	if len(blk.Labels) != 1 {
		fail(blk.DefRange(), "dynamic block needs one label")
		return "", errs
	}
	name := blk.Labels[0]
	nested, ok := sb.BlockTypes[name]
	if !ok {
		fail(blk.DefRange(), "unknown block %q (dynamic)", name)
		return "", errs
	}
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
		return name, errs
	}
	return name, append(errs, checkBody(path+"."+name, contents[0].Body, &nested.Block, false)...)
}
