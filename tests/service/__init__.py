"""Tests of the service layer (modelport.service): the one candidate loop and the stream pipeline."""
