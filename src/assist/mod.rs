//! What to ask the model: the action catalogue, the context window around the cursor, story notes, prompt rendering.
