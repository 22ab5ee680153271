from shared.extras import require_extra

require_extra("export", "python -m export")

from export.cli import main  # noqa: E402 - only once the export extra is known to be there
from kerasreg.cli import exit_now  # noqa: E402

exit_now(main())
