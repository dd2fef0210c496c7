"""Tests of the service layer (modelport.service): the candidate loop and the stream pipeline."""
