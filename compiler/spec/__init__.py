"""Reading a spec: YAML with positions (source), `extends:` and presets (compose), the pydantic
`Spec` (model), pydantic errors as diagnostics (validate), and the GPU facts the format names (gpu), sweep
templates expanded into runs (expand), and the scalar texts fixes carry (scalar_text)."""
