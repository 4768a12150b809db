"""AnnotationSession.segment owns the follow-up rule: one click more feeds the last logits back."""
import numpy as np

from napari_sam_mis.annotate.prompts import NEGATIVE, POSITIVE, Prompt
from napari_sam_mis.annotate.session import AnnotationSession
from napari_sam_mis.volume import Volume


def test_a_follow_up_click_feeds_back_the_last_logits_and_a_box_starts_afresh(lite_engine, monkeypatch):
    image = np.full((1, 64, 64), -1000, np.int16)
    image[0, 20:44, 16:40] = 60
    session = AnnotationSession(Volume(image, modality="CT"), lite_engine)
    seen = []
    real = session.predict

    def spy(z, prompt):
        seen.append(prompt)
        return real(z, prompt)

    monkeypatch.setattr(session, "predict", spy)
    first = session.segment(0, Prompt(points=[(30, 28)], labels=[POSITIVE]))
    session.segment(0, Prompt(points=[(30, 28), (22, 18)], labels=[POSITIVE, NEGATIVE]))
    assert seen[0].mask_logits is None and np.array_equal(seen[1].mask_logits, first.low_res_logits)

    session.segment(0, Prompt(points=[(30, 28), (25, 25)], labels=[POSITIVE, POSITIVE]))  # another second click
    assert seen[2].mask_logits is None, "not one click more than the last click prompt"
    session.segment(0, Prompt(box=(18, 14, 46, 42)))
    session.segment(0, Prompt(points=[(30, 28)], labels=[POSITIVE]))
    assert seen[4].mask_logits is None, "a box in between: the clicks start afresh"
    own = np.zeros((1, 256, 256), np.float32)
    session.segment(0, Prompt(points=[(30, 28), (31, 29)], labels=[POSITIVE, POSITIVE], mask_logits=own))
    assert seen[5].mask_logits is own, "a prompt's own logits are kept"
