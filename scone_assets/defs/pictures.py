"""Pictures (ROC curve, confusion matrix, example heatmaps) shown inline on the asset's page.

Why not `MetadataValue.md("![alt](data:image/png;base64,...)")`: the UI of Dagster 1.13.27 renders
a markdown metadata value inline only when it is shorter than 1000 characters, and behind a
"[Show Markdown]" link otherwise (ui-core/src/metadata/MetadataEntry.tsx, `case
'MarkdownMetadataEntry'`: `expandSmallValues && entry.mdStr.length < 1000`; shipped as
`t.mdStr.length<1e3` in dagster_webserver/webapp/build/_next/static/chunks/2093.21106d17da884243.js,
whose source map carries that file). Every metadata table of the asset page (Overview "Metadata",
Events, Partitions) passes `expandSmallValues`; a base64 PNG fits only below ~700 bytes.

So the PNG goes where the stock webserver already serves files, and the markdown carries only its
URL. The webserver's `/logs/{path}` route (dagster_webserver/webserver.py,
`download_captured_logs_endpoint`) answers `/logs/<ns>/.../<name>/<ext>` with the file
`LocalComputeLogManager.get_captured_local_path([ns, ..., name], ext)`, for any extension and with
the content type guessed from the name (image/png). The UI's markdown sanitizer keeps relative and
data: image sources (ui-core/src/ui/MarkdownWithPlugins.tsx), and the webserver's CSP has no img-src
(webapp/build/csp-header.txt). The file sits under the run's id next to its compute logs, so it
shares their lifetime; the run worker and the webserver find it through the same dagster.yaml (on a
cluster, the shared `base_dir` of dagster.slurm.yaml). Set SCONE_UI_PATH_PREFIX when the webserver
runs with --path-prefix.

Checked and not fitting: the asset description renders images inline, data: URIs included, but it
is fixed when the definitions load, not per materialization; table metadata renders cells as text;
there is no image metadata type and no reserved `dagster/` key for pictures.

Outside a run, or with another compute log manager (in-process `materialize` uses the no-op one;
cloud managers keep the files on another machine), the picture falls back to the data-URI markdown,
which still opens behind "[Show Markdown]".
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import dagster as dg

INLINE_LIMIT = 1000  # MetadataEntry.tsx: markdown at least this long is hidden behind a link
MAX_WIDTH = 640  # px; a wider PNG is shrunk, so it neither stretches the table nor the event log


Context = dg.OpExecutionContext | dg.AssetExecutionContext


def picture_metadata(path: Path, alt: str, key: str | None = None, *,
                     context: Context | None = None) -> dict[str, dg.MetadataValue]:
    """`{key: markdown}` that shows the PNG at `path` inline on the asset's page.

    `key` defaults to the file's stem; `context` to the current execution's.
    """
    data = _png_bytes(Path(path))
    alt = " ".join(alt.replace("[", "(").replace("]", ")").split())
    url = _served_url(context or _current_context(), data)
    md = f"![{alt}]({url})" if url else ""
    if not md or len(md) >= INLINE_LIMIT:
        md = f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"
    return {key or Path(path).stem: dg.MetadataValue.md(md)}


def _png_bytes(path: Path) -> bytes:
    """The PNG, shrunk to MAX_WIDTH when wider: its natural size is what the page shows."""
    from PIL import Image

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        if image.format != "PNG":
            raise ValueError(f"{path} is not a PNG")
        if image.width <= MAX_WIDTH:
            return data
        image.thumbnail((MAX_WIDTH, image.height * MAX_WIDTH // image.width + 1))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def _current_context() -> Context | None:
    try:
        return dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:
        return None


def _served_url(context: Context | None, data: bytes) -> str | None:
    """Write the PNG where the webserver's /logs route finds it; its URL, or None if it cannot."""
    # Private import, but the very class the webserver checks before serving /logs.
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    if context is None:
        return None
    manager = context.instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager):
        return None
    log_key = [context.run_id, "pictures", hashlib.sha256(data).hexdigest()[:16]]
    target = Path(manager.get_captured_local_path(log_key, "png"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".png.partial")
    partial.write_bytes(data)
    partial.replace(target)  # the page may ask for it while a retry rewrites it
    prefix = os.environ.get("SCONE_UI_PATH_PREFIX", "").rstrip("/")
    return f"{prefix}/logs/{'/'.join(log_key)}/png"
