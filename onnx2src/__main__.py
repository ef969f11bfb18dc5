"""`python -m onnx2src` is the `onnx2src` command."""
from .cli import main

raise SystemExit(main())
