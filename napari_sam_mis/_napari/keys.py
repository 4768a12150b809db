"""The keys of ``layer.metadata`` that the readers, writers, sample data and widget share."""

VOLUME_KEY = "volume"  # the source Volume (the writers take the geometry from it)
SEGMENTS_KEY = "segments"  # {"1": {"name", "color": [r, g, b]}}: names and colours of label values
LABEL_NAMES_KEY = "label_names"  # {value: name}, for napari users reading the metadata
WORLD_AXES_KEY = "world_axes"  # "SAR": world axes run superior->inferior, anterior->posterior, right->left
ROLE_KEY = "sam_mis_role"  # marks this plugin's own layers ("preview", "uncertainty"): never offered as images or labels
