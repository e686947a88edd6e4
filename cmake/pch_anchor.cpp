// Anchor translation unit: owns the shared precompiled torch header that
// every torch-using target reuses (see openba_use_torch in CMakeLists.txt).
