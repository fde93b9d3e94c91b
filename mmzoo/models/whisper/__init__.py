"""OpenAI Whisper from CTranslate2 packages, in keras-hub layers."""
