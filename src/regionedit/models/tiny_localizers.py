"""Tiny randomly initialised zero-shot localizer models of the real classes, saved as real folders (for tests).

Each builder writes a folder that the same ``from_pretrained`` calls as the real checkpoints load (see
:mod:`regionedit.localize.zero_shot`): the model (``config.json`` + ``model.safetensors``) and its processor /
tokenizer, all built offline. The configs are very small (hidden sizes 8-32, one or two layers, 32-64 px inputs),
so each builder finishes in about a second and a forward pass on a photo takes milliseconds; the outputs are
random, only their shapes, dtypes and frames mean anything.

=====================  =====================================  ===============================================
builder                class (real checkpoint)                processor saved
=====================  =====================================  ===============================================
save_tiny_clipseg      CLIPSegForImageSegmentation            CLIPSegProcessor (ViT 32x32 + CLIP BPE)
                       (CIDAS/clipseg-rd64-refined)
save_tiny_owlv2        Owlv2ForObjectDetection                Owlv2Processor (32x32 padded square + CLIP BPE)
                       (google/owlv2-base-patch16-ensemble)
save_tiny_grounding_   GroundingDinoForObjectDetection        GroundingDinoProcessor (shortest edge 64 +
dino                   (IDEA-Research/grounding-dino-tiny)    BERT WordPiece), Swin backbone, BERT text tower
save_tiny_sam          SamModel (facebook/sam-vit-base)       SamProcessor (longest edge 64, padded to 64x64)
save_tiny_sam2         Sam2Model (facebook/sam2.1-hiera-*)    ``preprocessor_config.json`` written by hand
                                                              (Sam2ImageProcessor needs torchvision)
save_tiny_sam3         Sam3Model (facebook/sam3)              ``processor_config.json`` written by hand
                                                              (Sam3ImageProcessor needs torchvision) + CLIP
                                                              BPE tokenizer of 32 tokens
=====================  =====================================  ===============================================

The random number generator is forked around every ``torch.manual_seed``: building never changes the caller's
global torch RNG state.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CORPUS = ("a photo of a cat", "the dog on the sofa", "a person on the left", "the sky", "a rocket", "a cup of coffee",
          "the man with a hat", "a woman", "the red circle", "the tree in the background")

#: the words of the tiny WordPiece vocabulary (besides single characters and ``##`` continuations)
WORDPIECE_WORDS = ("a an the of on in with to and cat dog person man woman sky hat photo sofa rocket coffee cup "
                   "tree red blue circle left right background").split()

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
OPENAI_CLIP_MEAN, OPENAI_CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _seeded(seed: int, build):
    """``build()`` under ``torch.manual_seed(seed)`` without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_clip_tokenizer(model_max_length: int = 16):
    """A small CLIP byte-level BPE tokenizer (:func:`regionedit.models.tokenizer.build_clip_tokenizer`) trained
    on a few referring expressions; any text still encodes (byte fallback)."""
    from .tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(list(CORPUS) * 3, vocab_size=300, model_max_length=model_max_length)


def tiny_wordpiece_tokenizer(model_max_length: int = 32):
    """A small BERT WordPiece tokenizer (``[PAD] [UNK] [CLS] [SEP] [MASK]``, punctuation, single characters and
    their ``##`` continuations, a few words): lower-cases, and any ASCII text encodes without ``[UNK]``."""
    from transformers import BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,;:!?'\"-()/&"] + chars + ["##" + c for c in chars]
    vocab = list(dict.fromkeys(vocab + list(WORDPIECE_WORDS)))
    return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, model_max_length=model_max_length)


def _clip_text_config(tok, hidden: int = 32) -> dict:
    return dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=tok.model_max_length, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)


def save_tiny_clipseg(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.CLIPSegForImageSegmentation` (CLIP towers: hidden 32, 2 layers,
    32x32 input, patch 4; decoder: reduce_dim 16, reading layers 0 and 1) with its
    :class:`~transformers.CLIPSegProcessor` (a ViT image processor resizing to 32x32 without crop, as the real
    one resizes to 352x352, and a CLIP BPE tokenizer of 16 tokens). Returns the folder."""
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    folder = _folder(folder)
    tok = tiny_clip_tokenizer()
    vision = dict(image_size=32, patch_size=4, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                  num_attention_heads=4)
    config = CLIPSegConfig(text_config=_clip_text_config(tok), vision_config=vision, projection_dim=32,
                           extract_layers=[0, 1], reduce_dim=16, decoder_num_attention_heads=2,
                           decoder_intermediate_size=32)
    _seeded(seed, lambda: CLIPSegForImageSegmentation(config)).save_pretrained(folder)
    image_processor = ViTImageProcessorPil(size={"height": 32, "width": 32}, do_resize=True, do_center_crop=False,
                                           image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder


def save_tiny_owlv2(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.Owlv2ForObjectDetection` (CLIP towers: hidden 32, 2 layers,
    32x32 input, patch 4 -> 64 candidate boxes, the box head's last layer zeroed so the boxes are the 8x8 patch
    grid's prior boxes) with its :class:`~transformers.Owlv2Processor` (pads the image
    to a square, bottom/right, then resizes to 32x32, as the real one does to 960x960; CLIP BPE tokenizer of 16
    tokens, the real model's text length). Returns the folder."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2Processor
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    folder = _folder(folder)
    tok = tiny_clip_tokenizer()
    vision = dict(image_size=32, patch_size=4, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                  num_attention_heads=4)
    config = Owlv2Config(text_config=_clip_text_config(tok), vision_config=vision, projection_dim=32)
    model = _seeded(seed, lambda: Owlv2ForObjectDetection(config))
    with torch.no_grad():  # boxes = the patch-grid prior boxes (a random box head puts them on the edges, 0 wide)
        model.box_head.dense2.weight.zero_()
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(folder)
    image_processor = Owlv2ImageProcessorPil(size={"height": 32, "width": 32}, image_mean=OPENAI_CLIP_MEAN,
                                             image_std=OPENAI_CLIP_STD)
    Owlv2Processor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder


def save_tiny_grounding_dino(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.GroundingDinoForObjectDetection` (d_model 32, 1 encoder and 2
    decoder layers, 20 queries, text length 32; vision backbone a transformers Swin (embed 8, depths 1/1/1,
    window 4; no timm or torchvision); text backbone a BERT of hidden 16, 1 layer) with its
    :class:`~transformers.GroundingDinoProcessor` (shortest edge 64, longest 96, keeping the aspect ratio as the
    real 800/1333 one does; a WordPiece tokenizer, :func:`tiny_wordpiece_tokenizer`). Returns the folder."""
    from transformers import BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection, GroundingDinoProcessor, SwinConfig
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import GroundingDinoImageProcessorPil

    folder = _folder(folder)
    tok = tiny_wordpiece_tokenizer(model_max_length=32)
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1], num_heads=[1, 1, 1], window_size=4,
                      out_indices=[1, 2, 3])
    bert = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=32)
    # d_model 32: the input projections' GroupNorm has 32 groups; 2 decoder layers: the tied box heads need a second
    config = GroundingDinoConfig(backbone_config=swin, text_config=bert, d_model=32, encoder_layers=1, decoder_layers=2,
                                 encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                 decoder_attention_heads=2, num_queries=20, max_text_len=32, num_feature_levels=4,
                                 encoder_n_points=2, decoder_n_points=2)
    _seeded(seed, lambda: GroundingDinoForObjectDetection(config)).save_pretrained(folder)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96},
                                                     image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder


def save_tiny_sam(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.SamModel` (ViT hidden 16, 2 layers, 64x64 input, patch 8 ->
    8x8 image embedding, 32x32 low-resolution masks; prompt encoder / mask decoder hidden 16) with its
    :class:`~transformers.SamProcessor` (longest edge 64, padded bottom/right to 64x64, as the real one does to
    1024). Returns the folder."""
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamProcessor, SamPromptEncoderConfig, SamVisionConfig
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    folder = _folder(folder)
    vision = SamVisionConfig(hidden_size=16, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1], num_pos_feats=8,
                             mlp_dim=32)
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                   iou_head_hidden_dim=16)
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    _seeded(seed, lambda: SamModel(config)).save_pretrained(folder)
    image_processor = SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                                           mask_size={"longest_edge": 32}, mask_pad_size={"height": 32, "width": 32})
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def save_tiny_sam2(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.Sam2Model` (Hiera backbone: hidden 8, stages of 1/1/2/1 blocks,
    64x64 input -> 16/8/4 px feature maps; FPN 16; prompt encoder / mask decoder hidden 16 -> 16x16 low-resolution
    masks) and a ``preprocessor_config.json`` in the real layout (resize to 64x64, ImageNet mean / std), written by
    hand because transformers' ``Sam2ImageProcessor`` needs torchvision (the localizer reads that file itself).
    Returns the folder."""
    from transformers import (Sam2Config, Sam2HieraDetConfig, Sam2MaskDecoderConfig, Sam2Model, Sam2PromptEncoderConfig,
                              Sam2VisionConfig)

    folder = _folder(folder)
    # window sizes stay >= 2 after each stage's query pooling; the global-attention block is not a pooling one
    backbone = Sam2HieraDetConfig(hidden_size=8, num_attention_heads=1, image_size=[64, 64], patch_stride=[4, 4],
                                  patch_kernel_size=[7, 7], patch_padding=[3, 3], blocks_per_stage=[1, 1, 2, 1],
                                  embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 1, 1],
                                  window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3],
                                  window_positional_embedding_background_size=[4, 4])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                              backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=16)
    prompt = Sam2PromptEncoderConfig(hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4)
    decoder = Sam2MaskDecoderConfig(hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                    iou_head_hidden_dim=16)
    config = Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    _seeded(seed, lambda: Sam2Model(config)).save_pretrained(folder)
    pre = {"image_processor_type": "Sam2ImageProcessor", "processor_class": "Sam2Processor",
           "do_resize": True, "size": {"height": 64, "width": 64}, "do_rescale": True, "rescale_factor": 1 / 255,
           "do_normalize": True, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD,
           "mask_size": {"height": 16, "width": 16}}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return folder


def save_tiny_sam3(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random :class:`~transformers.Sam3Model` (ViT hidden 16, 2 layers (the second global), 64x64
    input, patch 8 -> 8x8 grid, window 4, position embeddings of a 32 px pretraining size tiled as the real ones
    (336 -> 1008); FPN 16 at scales 4/2/1/0.5; CLIP text tower hidden 16, 1 layer, 32 positions; DETR encoder 1 /
    decoder 2 layers, 8 queries; masks 32x32 over the whole input) with its tokenizer (a CLIP BPE,
    :func:`tiny_clip_tokenizer`, 32 tokens: the real processor pads to 32) and a ``processor_config.json`` in the
    real ``Sam3Processor`` layout (resize to 64x64, mean / std 0.5), written by hand because transformers'
    ``Sam3ImageProcessor`` needs torchvision (the localizer reads that file itself). Returns the folder."""
    from transformers import Sam3Config, Sam3Model

    folder = _folder(folder)
    tok = tiny_clip_tokenizer(model_max_length=32)
    vit = dict(model_type="sam3_vit_model", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
               num_attention_heads=2, image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1],
               pretrain_image_size=32)
    vision = dict(backbone_config=vit, fpn_hidden_size=16, backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]])
    text = dict(_clip_text_config(tok, hidden=16), num_hidden_layers=1, num_attention_heads=2, projection_dim=16,
                max_position_embeddings=32)
    small = dict(hidden_size=16, num_attention_heads=2, intermediate_size=32)
    config = Sam3Config(vision_config=vision, text_config=text,
                        geometry_encoder_config=dict(small, num_layers=1),
                        detr_encoder_config=dict(small, num_layers=1),
                        detr_decoder_config=dict(small, num_layers=2, num_queries=8),
                        mask_decoder_config=dict(hidden_size=16, num_attention_heads=2))
    _seeded(seed, lambda: Sam3Model(config)).save_pretrained(folder)
    tok.save_pretrained(folder)
    image_processor = {"image_processor_type": "Sam3ImageProcessor", "do_resize": True,
                       "size": {"height": 64, "width": 64}, "resample": 2, "do_rescale": True,
                       "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                       "image_std": [0.5, 0.5, 0.5], "do_convert_rgb": True, "mask_size": {"height": 32, "width": 32}}
    pre = {"processor_class": "Sam3Processor", "image_processor": image_processor, "target_size": 64,
           "point_pad_value": -10}
    (folder / "processor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return folder


#: kind -> builder, the kinds of :func:`regionedit.localize.backends.load_localizer` specs
TINY_BUILDERS = {"clipseg": save_tiny_clipseg, "owlv2": save_tiny_owlv2, "grounding-dino": save_tiny_grounding_dino,
                 "sam": save_tiny_sam, "sam2": save_tiny_sam2, "sam3": save_tiny_sam3}
