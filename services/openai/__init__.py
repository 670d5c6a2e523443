"""The OpenAI-compatible API's domain side: requests translated into sessions and
generations, and generations translated back into OpenAI's objects and stream events."""
