module puente.interop/hpke

go 1.26
