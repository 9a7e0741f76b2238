"""The OCR engine, built once per process: PP-OCRv4 recognition (and detection) through
``rapidocr-onnxruntime==1.4.4``, whose wheel ships the ONNX models (no download, no network).

nianbao calls the *recogniser* on crops it cut itself (table cells, text lines found by the
projection in ``read_scan``), so the engine's own pipeline pieces that hurt on these tables are
never used (notes/pdf-and-ocr.md):

- no angle classifier: it turns short numbers by 180° (9→6, 19→61, 109→601);
- no crop rotation: PP-OCR turns any box with height/width ≥ 1.5 by 90°, which is every lone digit
  (0 read as ``10``/``o``/``。``); our crops go to the recogniser upright;
- detection is only offered for callers that want it (``detect``), at settings that keep small boxes.

The optional ``paddleocr`` engine is not shipped: ``paddleocr``/``paddlepaddle`` are not installed
on these machines (see docs/pdf-and-scans.md for how it could be wired offline).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import cv2
import math
import numpy as np

from models.errors import InputError

from . import deadline
from models.options import ExtractOptions

log = logging.getLogger(__name__)

# Crops per recogniser call: sorted by aspect ratio, so digit crops batch with digit crops and
# padding waste stays small; 6 (the wheel's default) costs ~30 % more session overhead here.
REC_BATCH = 16
REC_HEIGHT = 48          # PP-OCRv4 rec input height
MIN_RATIO = 1.0          # narrowest input (48 px): enough CTC steps for ``0``


@dataclass(frozen=True, slots=True)
class Reading:
    text: str
    score: float


class RapidEngine:
    """Holds the ONNX sessions (~60 MB resident). Thread-safe for concurrent ``recognize`` calls
    through a lock: onnxruntime sessions are, but the wheel's pre/post-processing keeps state."""

    name = "rapidocr"

    def __init__(self, threads: int | None = None):
        from rapidocr_onnxruntime import RapidOCR
        n = threads or max(1, min(4, os.cpu_count() or 1))
        self._ocr = RapidOCR(use_cls=False, intra_op_num_threads=n, inter_op_num_threads=1,
                             print_verbose=False)
        self._ocr.text_rec.rec_batch_num = REC_BATCH
        self._lock = threading.Lock()

    def recognize(self, crops: list[np.ndarray]) -> list[Reading]:
        """Read each crop (BGR or gray uint8, one text line, upright) as it is.

        Batches are padded only to the widest crop of the batch. The wheel pads every crop to at
        least 320 px (ratio 6.7): a lone digit (~40 px at height 48) then costs as much as a
        line of text, 29 ms instead of ~3 ms here, and a table page has ~200 of them.
        """
        if not crops:
            return []
        rec = self._ocr.text_rec
        ratios = np.array([c.shape[1] / max(1, c.shape[0]) for c in crops])
        order = np.argsort(ratios)
        out: list[Reading | None] = [None] * len(crops)
        with self._lock:
            for start in range(0, len(crops), REC_BATCH):
                deadline.check("OCR")
                idx = order[start:start + REC_BATCH]
                width = int(math.ceil(REC_HEIGHT * max(MIN_RATIO, float(ratios[idx].max()))))
                batch = np.zeros((len(idx), 3, REC_HEIGHT, width), np.float32)
                for k, i in enumerate(idx):
                    c = crops[i]
                    g = c if c.ndim == 2 else cv2.cvtColor(c, cv2.COLOR_BGR2GRAY)
                    w = max(1, min(width, int(math.ceil(REC_HEIGHT * ratios[i]))))
                    resized = cv2.resize(g, (w, REC_HEIGHT)).astype(np.float32) / 127.5 - 1.0
                    batch[k, :, :, :w] = resized[None, :, :]
                preds = rec.session(batch)[0]
                for k, (text, score) in enumerate(rec.postprocess_op(preds)):
                    out[int(idx[k])] = Reading(str(text), float(score))
        return [r if r is not None else Reading("", 0.0) for r in out]

    def detect(self, image: np.ndarray, box_thresh: float = 0.3, unclip_ratio: float = 1.6) -> np.ndarray:
        """Text boxes (N×4×2, page pixels) from the DB detector."""
        with self._lock:
            det = self._ocr.text_det
            det.postprocess_op.box_thresh = box_thresh
            det.postprocess_op.unclip_ratio = unclip_ratio
            img = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
            boxes, _ = det(img)
        return np.zeros((0, 4, 2)) if boxes is None else boxes


_ENGINES: dict[str, RapidEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(options: ExtractOptions = ExtractOptions()) -> RapidEngine:
    """The process-wide engine for ``options.ocr_engine`` (built on first use)."""
    name = options.ocr_engine
    if name != "rapidocr":
        raise InputError("ocr_engine_unavailable", f"OCR engine {name!r} is not available in this "
                         "installation; use the default engine 'rapidocr'.")
    with _ENGINES_LOCK:
        if name not in _ENGINES:
            _ENGINES[name] = RapidEngine()
        return _ENGINES[name]
