import sys

from shared.extras import require_extra

require_extra(("serve", "litert"), "python -m serve")  # onnxruntime, or LiteRT for .tflite files

from serve.cli import main  # noqa: E402 - only once the serve extra is known to be there

sys.exit(main())
