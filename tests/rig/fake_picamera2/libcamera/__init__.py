"""Stand-in for libcamera's Python binding: only what camgate uses (Transform)."""


class Transform:
    def __init__(self, rotation=0, hflip=False, vflip=False, transpose=False):
        self.hflip = bool(hflip) != (rotation == 180)
        self.vflip = bool(vflip) != (rotation == 180)
        self.transpose = bool(transpose)

    def __repr__(self):
        return f"<libcamera.Transform hflip={self.hflip} vflip={self.vflip}>"
