"""Model families other libraries train, behind the one model interface: pythae's
autoencoders and diffusers' AutoencoderKL (``zspace.models.wrapped.ADAPTERS`` tries
them before the generic adapters). Each module recognises its family without
importing the library, adapts encode/decode, names the origin a run records and
rebuilds the model from it; the library itself loads only when one is used."""
