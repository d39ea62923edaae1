"""tqdm's `contrib` helpers, on milepost: `milepost.contrib.concurrent`."""
