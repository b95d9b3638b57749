"""The rendered image on screen: a GL texture, blitted 1:1 (or stretched) into the viewport
rectangle of the default framebuffer, and framebuffer read-back for screenshots and tests.

Rectangles are (x, y, width, height) in framebuffer pixels with y measured from the *top* of
the window (image convention, row 0 at the top); GL's bottom-up rows are converted here. The
default framebuffer is not sRGB-converting, so the renderer's sRGB bytes reach the screen (and
``read_pixels``) unchanged.
"""

from __future__ import annotations

import numpy as np
from OpenGL import GL


class ViewportImage:
    """An RGB8 texture holding the latest rendered frame, and the FBO used to blit it."""

    def __init__(self) -> None:
        self.texture = GL.glGenTextures(1)
        self.framebuffer = GL.glGenFramebuffers(1)
        self.size = (0, 0)

    def upload(self, image: np.ndarray) -> None:
        """Replace the texture with ``image`` (uint8 [H, W, 3], row 0 at the top)."""
        h, w = image.shape[:2]
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGB8, w, h, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE,
                        np.ascontiguousarray(image, np.uint8))
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self.framebuffer)
        GL.glFramebufferTexture2D(GL.GL_READ_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture, 0)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        self.size = (w, h)

    def blit(self, rect: tuple[int, int, int, int], framebuffer_height: int) -> None:
        """Draw the texture into ``rect`` of the default framebuffer (nearest filtering when the
        sizes match, so pixels arrive exactly; linear when stretched). Texture row 0 (image top)
        goes to the rectangle's top."""
        if self.size == (0, 0):
            return
        x, y, w, h = rect
        tw, th = self.size
        top, bottom = framebuffer_height - y, framebuffer_height - y - h
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self.framebuffer)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, 0)
        filt = GL.GL_NEAREST if (tw, th) == (w, h) else GL.GL_LINEAR
        # source row 0 is the image top: flip vertically by swapping the destination's y ends
        GL.glBlitFramebuffer(0, 0, tw, th, x, top, x + w, bottom, GL.GL_COLOR_BUFFER_BIT, filt)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)

    def delete(self) -> None:
        """Free the GL objects (the context must be current)."""
        GL.glDeleteFramebuffers(1, [self.framebuffer])
        GL.glDeleteTextures(1, [self.texture])


def read_pixels(rect: tuple[int, int, int, int], framebuffer_height: int) -> np.ndarray:
    """uint8 [h, w, 3] of ``rect`` of the default framebuffer's back buffer (row 0 at the top):
    call it after drawing and before the swap (the front buffer of a hidden window, or of any
    window on some X servers, cannot be read back)."""
    x, y, w, h = rect
    GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
    GL.glReadBuffer(GL.GL_BACK)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    data = GL.glReadPixels(x, framebuffer_height - y - h, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1].copy()
