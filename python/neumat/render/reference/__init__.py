"""numpy references of the render passes (float64, brute force): the tests compare the Slang
passes with these. Not for production use (slow)."""
