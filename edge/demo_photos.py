"""Real photos as camera frames: scikit-image's sample images, gray, 224x224, as PGM files.

usage: /usr/bin/python3 edge/demo_photos.py OUTDIR

rtci-fleet and rtci-edge read a folder of PGM images (edge/frames.h). The photos have no
class labels, so the fleet scores no accuracy on them.
"""
import os
import sys

import numpy as np
from skimage import color, data, transform

# photographs (not drawings or microscopy), in a fixed order
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "hubble_deep_field"]
SIZE = 224


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n = 0
    for name in SAMPLES:
        try:
            img = np.asarray(getattr(data, name)(), dtype=float)
        except Exception:  # not in this scikit-image, or needs a download
            continue
        if img.ndim == 3:
            img = color.rgb2gray(img[..., :3] / (255.0 if img.max() > 1 else 1.0))
        elif img.max() > 1:
            img = img / 255.0
        # centre square, then 224x224
        h, w = img.shape
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        img = transform.resize(img, (SIZE, SIZE), anti_aliasing=True)
        px = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
        with open(os.path.join(out, "%s.pgm" % name), "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (SIZE, SIZE))
            f.write(px.tobytes())
        n += 1
    if n == 0:
        sys.exit("demo_photos: no sample image found in skimage.data")
    print("demo_photos: %d photos of %dx%d in %s" % (n, SIZE, SIZE, out))


if __name__ == "__main__":
    main()
