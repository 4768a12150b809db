"""`napari-sam-mis export-dataset`: annotated studies -> nnU-Net v2 raw dataset."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export-dataset", help="write image/label pairs as an nnU-Net v2 raw dataset",
        description="Write image/label pairs (NIfTI, DICOM folders, DICOM-SEG) into the nnU-Net v2 raw layout: "
                    "<out>/DatasetXXX_<name>/imagesTr, labelsTr and dataset.json.")
    parser.add_argument("--case", nargs=2, action="append", required=True, metavar=("IMAGE", "LABELS"),
                        help="an image (file or DICOM folder) and its labels (.nii.gz or DICOM-SEG); repeat per case")
    parser.add_argument("--out", required=True, help="folder that receives DatasetXXX_<name> (e.g. $nnUNet_raw)")
    parser.add_argument("--id", type=int, required=True, help="nnU-Net dataset id, 1..999")
    parser.add_argument("--name", required=True, help="dataset name (letters, digits, '_' or '-')")
    parser.add_argument("--label", action="append", default=[], metavar="VALUE=NAME",
                        help="name a label value (overrides names stored with the labels); repeatable")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--allow-other-frame", action="store_true",
                        help="accept a DICOM-SEG whose frame of reference is not its image's (another patient or scan)")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args) -> int:
    from napari_sam_mis.errors import InputError
    from napari_sam_mis.io.dataset import export_nnunet_dataset

    segments = None
    if args.label:
        try:
            segments = {int(v): n for v, n in (item.split("=", 1) for item in args.label)}
        except ValueError as exc:
            raise InputError("--label", f"expected VALUE=NAME, got {args.label}") from exc
    out = export_nnunet_dataset([tuple(c) for c in args.case], args.out, dataset_id=args.id, name=args.name,
                                segments=segments, overwrite=args.overwrite, allow_other_frame=args.allow_other_frame)
    print(out)
    return 0
