"""DICOM Segmentation objects (DICOM-SEG) via highdicom: written against the source series, read onto a Volume."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from napari_sam_mis.errors import InputError
from napari_sam_mis.io.atomic import atomic_path
from napari_sam_mis.io.dicom import LPS_TO_RAS
from napari_sam_mis.io.reorient import reorient_onto
from napari_sam_mis.io.segments import Labels, Segment, make_segments
from napari_sam_mis.volume import Volume

_REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID")


def check_seg_source(volume: Volume, path, new_uids: bool = False) -> None:
    """Raise the error ``write_dicom_seg`` would give for this source (no DICOM, blank UIDs),
    before any work is done for it (new UIDs, if asked for, are made now and kept for the write)."""
    _source_datasets(volume, Path(path), new_uids)


def _source_datasets(volume: Volume, path: Path, new_uids: bool) -> list:
    datasets = volume.meta.get("dicom_datasets")
    if not datasets:
        raise InputError(path, f"a DICOM-SEG must reference DICOM images, but this image came from "
                               f"{volume.source or 'memory'}; save the labels as .nii.gz instead")
    missing = sorted({k for ds in datasets for k in _REQUIRED_UIDS if not ds.get(k)})
    if missing and not new_uids:
        raise InputError(path, f"the source series has blank {', '.join(missing)} (anonymised), so a DICOM-SEG "
                               "could not reference it. Save as .nii.gz instead, or generate new UIDs "
                               "(command line: --new-uids; Python: write_labels(..., new_uids=True)); the "
                               "SEG will then refer to UIDs that the source files do not carry")
    if missing:
        from pydicom.uid import generate_uid

        fills = {k: generate_uid() for k in _REQUIRED_UIDS[:3]}
        datasets = [copy.deepcopy(ds) for ds in datasets]
        for ds in datasets:
            for k, uid in fills.items():
                if not ds.get(k):
                    setattr(ds, k, uid)
            if not ds.get("SOPInstanceUID"):
                ds.SOPInstanceUID = generate_uid()
        volume.meta["dicom_datasets"] = datasets  # later saves reference the same generated UIDs
        volume.meta["sop_instance_uids"] = [str(ds.SOPInstanceUID) for ds in datasets]
    if "SpecificCharacterSet" in datasets[0] and not datasets[0].SpecificCharacterSet:
        datasets = [copy.copy(ds) for ds in datasets]  # a blank value means the default repertoire
        for ds in datasets:
            del ds.SpecificCharacterSet
    return datasets


def write_dicom_seg(labels: np.ndarray, volume: Volume, path, segments=None, *,
                    algorithm_name: str = "napari-sam-mis", new_uids: bool = False) -> Path:
    """One segment per label value (renumbered 1..N in value order), only frames that contain it."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from napari_sam_mis import __version__

    out = Path(path)
    sources = _source_datasets(volume, out, new_uids)
    if len(sources) != labels.shape[0]:
        raise InputError(out, "DICOM-SEG writing supports single-frame source series only "
                              f"({len(sources)} source files for {labels.shape[0]} slices)")
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise InputError(out, "the labels are empty (no labelled voxels); nothing to save")
    segs = make_segments(segments, values)
    algorithm = hd.AlgorithmIdentificationSequence(name=algorithm_name, family=codes.DCM.ArtificialIntelligence,
                                                   version=str(__version__))
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=segs[value].name[:64],
            segmented_property_category=segs[value].category, segmented_property_type=segs[value].type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC, algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*segs[value].color),
        )
        for number, value in enumerate(values, start=1)
    ]
    lut = np.zeros(256, np.uint8)
    lut[values] = np.arange(1, len(values) + 1)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=lut[labels], segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="napari-sam-mis",
        manufacturer_model_name=algorithm_name[:64], software_versions=str(__version__), device_serial_number="1",
        series_description=f"Segmentation ({algorithm_name})"[:64], content_label="SEGMENTATION",
        content_description=f"Labels made with {algorithm_name}"[:64],
    )
    if not all(segs[v].name.isascii() for v in values):
        seg.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, so that names in any script survive
    with atomic_path(out) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return out


def _segments_of(seg) -> dict[int, Segment]:
    import highdicom as hd

    out = {}
    for item in seg.SegmentSequence:
        lab = item.get("RecommendedDisplayCIELabValue")
        color = hd.color.CIELabColor.from_dicom_value(list(lab)).to_rgb() if lab else None
        number = int(item.SegmentNumber)
        out[number] = Segment(number, str(item.SegmentLabel), color,
                              hd.sr.CodedConcept.from_dataset(item.SegmentedPropertyCategoryCodeSequence[0]),
                              hd.sr.CodedConcept.from_dataset(item.SegmentedPropertyTypeCodeSequence[0]))
    return out


def _read(path: Path):
    import highdicom as hd

    try:
        return hd.seg.segread(str(path))
    except Exception as exc:
        raise InputError(path, f"not a readable DICOM-SEG ({exc})") from exc


def _as_labels(stack: np.ndarray, numbers: list[int], segments: dict) -> Labels:
    """(z, y, x, n_segments) masks -> a label map, or per-segment masks when segments overlap."""
    masks = stack > (0.5 if stack.dtype.kind == "f" else 0)
    if masks.sum(axis=-1).max(initial=0) > 1:
        return Labels(np.ascontiguousarray(np.moveaxis(masks, -1, 0).astype(np.uint8)), segments)
    labelmap = np.zeros(masks.shape[:3], np.uint8 if max(numbers) <= 255 else np.uint16)
    for i, number in enumerate(numbers):
        labelmap[masks[..., i]] = number
    return Labels(labelmap, segments)


def _check_frame_of_reference(seg, volume: Volume, path: Path) -> None:
    """A SEG made in another frame of reference (another patient or scan) is refused even on an equal grid."""
    images = volume.meta.get("dicom_datasets") or []
    ours = {str(ds.get("FrameOfReferenceUID") or "") for ds in images} - {""}
    theirs = str(seg.get("FrameOfReferenceUID") or "")
    if ours and theirs and theirs not in ours:
        raise InputError(path, f"belongs to frame of reference {theirs}, the image to {', '.join(sorted(ours))} "
                               "(another patient or scan); pass allow_other_frame=True "
                               "(command line: --allow-other-frame) if it really belongs to this image")


def read_dicom_seg(path, volume: Volume, allow_other_frame: bool = False) -> Labels:
    """A DICOM-SEG onto ``volume``: by referenced instances when it was read from the source series,
    otherwise by geometry (frame positions). It must share the image's frame of reference unless
    ``allow_other_frame``."""
    p = Path(path)
    seg = _read(p)
    try:
        if not allow_other_frame:
            _check_frame_of_reference(seg, volume, p)
        segments = _segments_of(seg)
    except InputError:
        raise
    except Exception as exc:  # a damaged element, read for the first time here
        raise InputError(p, f"damaged DICOM-SEG header ({exc})") from exc
    numbers = sorted(segments)
    if not numbers:
        raise InputError(p, "holds no segment")
    uids = volume.meta.get("sop_instance_uids") or []
    try:
        referenced = {sop for _, _, sop in seg.get_source_image_uids()}
        if uids and len(uids) == volume.shape[0] and referenced & set(uids):
            stack = seg.get_pixels_by_source_instance(uids, segment_numbers=numbers, assert_missing_frames_are_empty=True,
                                                       ignore_spatial_locations=True)
        else:
            vol = seg.get_volume(segment_numbers=numbers)
            stack = reorient_onto(np.asarray(vol.array), LPS_TO_RAS @ np.asarray(vol.affine), volume, p, partial=True)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(p, f"cannot place this DICOM-SEG on the image ({exc})") from exc
    return _as_labels(stack, numbers, segments)


def seg_grid(path) -> Volume:
    """An empty Volume on the DICOM-SEG's own grid, for opening a SEG without its source images."""
    p = Path(path)
    try:
        vol = _read(p).get_volume()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(p, f"this DICOM-SEG has no regular 3D geometry ({exc})") from exc
    return Volume(np.zeros(vol.array.shape[:3], np.uint8), spacing=tuple(float(s) for s in vol.spacing),
                  affine=LPS_TO_RAS @ np.asarray(vol.affine), modality="OT", source=str(p))


def source_volume(path) -> Volume | None:
    """The image series a DICOM-SEG references, when it lies beside the SEG (in its folder or a
    folder inside that), read as a Volume; None when it is not there. The SEG then opens on the
    whole series, and can be saved back as DICOM-SEG."""
    import warnings

    from napari_sam_mis.io.dicom import list_series, read_series

    p = Path(path)
    wanted = {str(item.get("SeriesInstanceUID", "")) for item in _read(p).get("ReferencedSeriesSequence", [])} - {""}
    if not wanted:
        return None
    folders = [p.parent, *sorted(d for d in p.parent.iterdir() if d.is_dir() and not d.name.startswith("."))]
    for folder in folders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SEG itself and other files are skipped
            try:
                found = [s for s in list_series(folder) if s.uid in wanted]
            except (InputError, OSError):
                continue
        if found:
            return read_series(folder, series=found[0].uid)
    return None
